# NixOS module for mox, after NixOS RFC 42: one free-form `settings` option in the format of
# `mox config describe`, rendered to JSON and checked with `mox config check` at build time, plus
# a few promoted options. Keys are never in the store: `mox dkim ensure-keys` creates missing DKIM
# keys in the state directory at service start.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.mox;
  format = pkgs.formats.json { };

  rawConfig = format.generate "mox.json" cfg.settings;
  # The one validator. Key and password files are made at service start, so the build checks
  # everything but their existence; the service checks them again before it starts.
  configFile = pkgs.runCommand "mox.json" { nativeBuildInputs = [ cfg.package ]; } ''
    mox config check --skip-file-checks ${rawConfig}
    cp ${rawConfig} $out
  '';

  # Standard ports: RFC 5321 (25), RFC 6409 (587), RFC 8314 (465, 993), RFC 9051 (143).
  defaultPorts = {
    smtp = 25;
    submission = 587;
    submissions = 465;
    imap = 143;
    imaps = 993;
    http = 80;
    https = 443;
  };
  listenerPorts =
    listener:
    lib.concatMap (
      service:
      let
        svc = listener.${service} or { };
      in
      lib.optional (svc.enabled or false) (svc.port or defaultPorts.${service})
    ) (builtins.attrNames defaultPorts);
  ports = lib.unique (lib.concatMap listenerPorts (lib.attrValues (cfg.settings.listeners or { })));

  mox = lib.getExe cfg.package;
in
{
  options.services.mox = {
    enable = lib.mkEnableOption "the mox mail server";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The mox package (the flake's `packages.default`).";
    };

    hostname = lib.mkOption {
      type = lib.types.str;
      example = "mail.example.com";
      description = "Fully qualified host name of the mail server; sets `settings.hostname`.";
    };

    domains = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "example.com" ];
      description = "Mail domains with default settings; more in `settings.domains`.";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the TCP ports of every enabled listener service in the firewall.";
    };

    ensureDkimKeys = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Run `mox dkim ensure-keys` before the service starts (creates missing keys).";
    };

    user = lib.mkOption {
      type = lib.types.str;
      default = "mox";
      description = "User the service runs as; created when left at `mox`.";
    };

    group = lib.mkOption {
      type = lib.types.str;
      default = "mox";
      description = "Group of the service; created when left at `mox`.";
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = format.type;
        options.data_dir = lib.mkOption {
          type = lib.types.str;
          default = "/var/lib/mox";
          description = "Accounts, messages and state (the service's StateDirectory).";
        };
      };
      default = { };
      example = lib.literalExpression ''
        {
          postmaster = "alice";
          listeners.public = {
            ips = [ "0.0.0.0" "::" ];
            tls.acme = "letsencrypt";
            smtp.enabled = true;
            submissions.enabled = true;
            imaps.enabled = true;
            https.enabled = true;
          };
          acme.letsencrypt = {
            directory_url = "https://acme-v02.api.letsencrypt.org/directory";
            contact_email = "postmaster@example.com";
          };
          domains."example.com".dkim = {
            sign = [ "2026a" ];
            selectors."2026a".private_key_file = "/var/lib/mox/dkim/2026a.example.com.pem";
          };
          accounts.alice = {
            domain = "example.com";
            destinations."alice@example.com" = { };
            password_file = "/run/keys/mox-alice";
          };
        }
      '';
      description = ''
        The mox config (see `mox config describe` and `schemas/mox.schema.json`), rendered to
        JSON and checked with `mox config check` when the system is built. Secrets and keys are
        files named by `*_file` keys, never values in here; paths must be absolute.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.settings.postmaster or null) != null;
        message = "services.mox.settings.postmaster must name an account";
      }
      {
        assertion = (cfg.settings.listeners or { }) != { };
        message = "services.mox.settings.listeners must declare at least one listener";
      }
      {
        assertion = lib.hasPrefix "/" cfg.settings.data_dir;
        message = "services.mox.settings.data_dir must be an absolute path";
      }
    ];

    services.mox.settings = {
      hostname = lib.mkDefault cfg.hostname;
      domains = lib.genAttrs cfg.domains (_: lib.mkDefault { });
    };

    users.users = lib.mkIf (cfg.user == "mox") {
      mox = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.settings.data_dir;
      };
    };
    users.groups = lib.mkIf (cfg.group == "mox") { mox = { }; };

    environment.systemPackages = [ cfg.package ];
    environment.etc."mox/mox.json".source = configFile;

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall ports;

    systemd.services.mox = {
      description = "mox mail server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      restartTriggers = [ configFile ];
      serviceConfig = {
        Type = "exec";
        User = cfg.user;
        Group = cfg.group;
        ExecStartPre =
          lib.optional cfg.ensureDkimKeys "${mox} dkim ensure-keys --config ${configFile}"
          ++ [ "${mox} config check ${configFile}" ];
        ExecStart = "${mox} serve --config ${configFile}";
        # `mox reload` (as SIGHUP, but it fails when the server refuses the file) reloads TLS
        # certificates and the config file (listener changes need a restart); a new config
        # restarts the unit (restartTriggers).
        ExecReload = "${mox} reload --config ${configFile}";
        Restart = "always";
        RestartSec = "5s";
        LimitNOFILE = 15000;
        StateDirectory = "mox";
        StateDirectoryMode = "0750";
        WorkingDirectory = cfg.settings.data_dir;
        ReadWritePaths = [ cfg.settings.data_dir ];
        UMask = "0077";
        # The same hardening as the Ansible role's unit (ansible/roles/mox/templates).
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectHostname = true;
        ProtectClock = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectProc = "invisible";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged @resources"
        ];
      };
    };
  };
}
