"""The `load` extension: `(file.soma) >load` runs a SOMA file on this VM.

The file is looked up as given (relative to the current directory), then in
each directory of the SOMA_LIB environment variable (os.pathsep-separated).
A file found nowhere is a RuntimeError naming the places searched.
"""

import os

from ..sources import read_source
from ..errors import RuntimeError as SomaRuntimeError
from ..values import class_name


def find(name):
    candidates = [name]
    for directory in os.environ.get("SOMA_LIB", "").split(os.pathsep):
        if directory:
            candidates.append(os.path.join(directory, name))
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def load_file(vm):
    if not vm.al:
        raise SomaRuntimeError("AL underflow: load requires 1 value")
    name = vm.al.pop()
    if type(name) is not str:
        raise SomaRuntimeError("load: expected string file name, got %s" % class_name(name))
    path = find(name)
    if path is None:
        raise SomaRuntimeError("load: '%s' not found in the current directory or SOMA_LIB"
                               % name)
    try:
        text = read_source(path)
    except OSError as exc:
        raise SomaRuntimeError("load: cannot read %s" % exc) from None
    vm.execute_code(text, path)


def register(vm):
    vm.register_extension_builtin("use.load.file", load_file)


def soma_setup():
    return "{ >use.load.file } !load   ) [file] -> [...]: run a SOMA file\n"
