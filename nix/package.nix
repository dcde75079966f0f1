# mox as a Python application. The dependencies are read from pyproject.toml, so the list lives
# in one place: each `name>=version` maps to the nixpkgs Python package of the same name.
{
  lib,
  python3Packages,
  src,
}:
let
  pyproject = lib.importTOML ../pyproject.toml;
  # "sqlite-utils>=3.36" -> "sqlite-utils"; PyPI names are nixpkgs attribute names, lower-cased.
  depName = spec: lib.toLower (builtins.head (builtins.match "([A-Za-z0-9_.-]+).*" spec));
  fromPyPI = spec: python3Packages.${depName spec};
in
python3Packages.buildPythonApplication {
  pname = "mox";
  inherit (pyproject.project) version;
  pyproject = true;
  inherit src;

  build-system = [ python3Packages.hatchling ];
  dependencies = map fromPyPI pyproject.project.dependencies;

  # The test suite needs Debian's mail and DNS tools; the VM test (nix/tests/vm.nix) runs the
  # real server instead.
  doCheck = false;
  pythonImportsCheck = [
    "mox"
    "mox.cli"
    "mox.server.run"
  ];

  meta = {
    description = (pyproject.project.description);
    license = lib.licenses.mit;
    mainProgram = "mox";
    platforms = lib.platforms.unix;
  };
}
