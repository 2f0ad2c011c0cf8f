"""SOMA extensions: `(name) >use` imports `soma.extensions.<name>`.

An extension module defines `register(vm)`, which installs Python-written
builtins with `vm.register_extension_builtin("use.<name>.<word>", fn)`, and may
define `soma_setup()`, returning SOMA source run once after registration.
"""
