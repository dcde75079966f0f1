{
  description = "mox: a complete, secure, low-maintenance mail server driven by one declarative config";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      forAllSystems = lib.genAttrs lib.systems.flakeExposed;
      pkgsFor = system: nixpkgs.legacyPackages.${system};
    in
    {
      packages = forAllSystems (system: rec {
        mox = (pkgsFor system).callPackage ./nix/package.nix { src = self; };
        default = mox;
      });

      # `nix run .#mox -- localserve`
      apps = forAllSystems (system: rec {
        mox = {
          type = "app";
          program = "${self.packages.${system}.mox}/bin/mox";
          meta.description = "The mox command";
        };
        default = mox;
      });

      nixosModules = rec {
        mox =
          { pkgs, ... }:
          {
            imports = [ ./nix/module.nix ];
            # The flake's own build is the default package.
            services.mox.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.mox;
          };
        default = mox;
      };

      # A NixOS VM test per Linux system: a server and a client that sends and reads mail.
      checks = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
        package = self.packages.${system}.mox;
        vm = (pkgsFor system).testers.runNixOSTest (
          import ./nix/tests/vm.nix {
            module = ./nix/module.nix;
            package = self.packages.${system}.mox;
          }
        );
      });

      formatter = forAllSystems (system: (pkgsFor system).nixfmt-rfc-style);
    };
}
