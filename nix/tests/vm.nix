# NixOS VM test: a mox server and a client; the client submits a message with smtplib and reads
# it back with imaplib (as simple-nixos-mailserver's mail-check.py and nixpkgs' stalwart test).
# Run with `nix flake check` or `nix build .#checks.x86_64-linux.vm` on a machine with Nix.
{ module, package }:
{ pkgs, lib, ... }:
let
  password = "vm-test-password";
  # Test-only: the derived password secrets (never a plain password) in the store.
  alicePasswordFile =
    let
      cfg = pkgs.writeText "passwd.json" (
        builtins.toJSON {
          hostname = "mail.example.test";
          postmaster = "alice";
          listeners.local.ips = [ "127.0.0.1" ];
          domains."example.test" = { };
          accounts.alice = {
            domain = "example.test";
            destinations."alice@example.test" = { };
          };
        }
      );
    in
    pkgs.runCommand "alice-password" { nativeBuildInputs = [ package ]; } ''
      printf '%s' '${password}' | mox account passwd alice --config ${cfg} --password-stdin --print > $out
    '';

  mailCheck = pkgs.writers.writePython3Bin "mail-check" { } ''
    import imaplib
    import smtplib
    import sys
    import time

    host = sys.argv[1]
    msg = (
        "From: alice@example.test\r\n"
        "To: alice@example.test\r\n"
        "Subject: vm test\r\n"
        "Message-Id: <vm-test@example.test>\r\n"
        "\r\n"
        "hello from the client\r\n"
    )
    with smtplib.SMTP(host, 587, timeout=30) as smtp:
        smtp.login("alice@example.test", "${password}")
        smtp.sendmail("alice@example.test", ["alice@example.test"], msg)
    for _ in range(30):
        with imaplib.IMAP4(host, 143, timeout=30) as imap:
            imap.login("alice@example.test", "${password}")
            imap.select("Inbox")
            _, found = imap.search(None, "SUBJECT", '"vm test"')
            if found[0]:
                _, data = imap.fetch(found[0].split()[0], "(BODY[TEXT])")
                assert b"hello from the client" in data[0][1], data
                print("mail received")
                sys.exit(0)
        time.sleep(1)
    sys.exit("the message did not arrive")
  '';
in
{
  name = "mox";

  nodes.server =
    { ... }:
    {
      imports = [ module ];
      services.mox = {
        enable = true;
        inherit package;
        hostname = "mail.example.test";
        domains = [ "example.test" ];
        openFirewall = true;
        settings = {
          postmaster = "alice";
          listeners.public = {
            ips = [ "0.0.0.0" ];
            smtp.enabled = true;
            submission = {
              enabled = true;
              require_starttls = false;
            };
            imap = {
              enabled = true;
              require_starttls = false;
            };
          };
          domains."example.test".dkim = {
            sign = [ "2026a" ];
            selectors."2026a".private_key_file = "/var/lib/mox/dkim/2026a.example.test.pem";
          };
          accounts.alice = {
            domain = "example.test";
            destinations."alice@example.test" = { };
            password_file = "${alicePasswordFile}";
          };
        };
      };
    };

  nodes.client =
    { ... }:
    {
      environment.systemPackages = [ mailCheck ];
    };

  testScript = ''
    start_all()
    server.wait_for_unit("mox.service")
    server.wait_for_open_port(25)
    server.wait_for_open_port(587)
    server.wait_for_open_port(143)

    with subtest("the config in /etc passes mox config check"):
        server.succeed("mox config check /etc/mox/mox.json")

    with subtest("DKIM keys were created at service start, outside the store"):
        server.succeed("test -s /var/lib/mox/dkim/2026a.example.test.pem")

    with subtest("send with smtplib, read with imaplib"):
        client.wait_until_succeeds("mail-check server", timeout=60)

    with subtest("the mail survives a restart"):
        server.systemctl("restart mox.service")
        server.wait_for_open_port(143)
        client.succeed("mail-check server")
  '';
}
