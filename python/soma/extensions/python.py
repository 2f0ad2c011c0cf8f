"""The `python` extension: call Python from SOMA.

use.python.call    [Void, arg1 .. argN, name] -> [result, exception]
                   Pops the callable's name, then arguments down to a Void
                   marker; calls the callable with the arguments in push order.
                   On success pushes the result (None as Void, bools as SOMA
                   booleans) and Void; on failure Void and the exception (the
                   exception object if the call raised, its message as a Str if
                   the name could not be resolved).
use.python.import  [name] -> [True | False]   whether the module imports
use.python.load    [file] -> [...]            run a SOMA file on this VM

`name` is a builtin (`len`), `module.attr` (`math.sqrt`), or `type.method`
of a builtin type (`str.upper`).
"""

import builtins
import importlib

from ..sources import read_source
from ..errors import RuntimeError as SomaRuntimeError
from ..values import FALSE, TRUE, VOID, class_name


def _pop_str(vm, word, what):
    if not vm.al:
        raise SomaRuntimeError("AL underflow: %s requires %s" % (word, what))
    value = vm.al.pop()
    if type(value) is not str:
        raise SomaRuntimeError("%s: expected string %s, got %s" % (word, what, class_name(value)))
    return value


def _resolve(name):
    if "." not in name:
        return getattr(builtins, name)
    owner, attr = name.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(owner), attr)
    except ImportError:
        return getattr(getattr(builtins, owner), attr)


def _to_soma(result):
    if result is None:
        return VOID
    if result is True:
        return TRUE
    if result is False:
        return FALSE
    return result


def call(vm):
    name = _pop_str(vm, "use.python.call", "callable name")
    al = vm.al
    args = []
    while True:
        if not al:
            raise SomaRuntimeError("AL underflow: use.python.call requires Void terminator")
        arg = al.pop()
        if arg is VOID:
            break
        args.append(arg)
    args.reverse()
    try:
        fn = _resolve(name)
    except Exception as exc:  # a name that does not resolve is reported, not raised
        al.append(VOID)
        al.append(str(exc) or type(exc).__name__)
        return
    try:
        result = fn(*args)
    except Exception as exc:  # the exception is a value SOMA code inspects
        al.append(VOID)
        al.append(exc)
        return
    al.append(_to_soma(result))
    al.append(VOID)


def import_module(vm):
    name = _pop_str(vm, "use.python.import", "module name")
    try:
        importlib.import_module(name)
    except Exception:  # not importable, whatever the reason (bad name, failing module)
        vm.al.append(FALSE)
    else:
        vm.al.append(TRUE)


def load(vm):
    path = _pop_str(vm, "use.python.load", "filepath")
    try:
        text = read_source(path)
    except FileNotFoundError:
        raise SomaRuntimeError("use.python.load: file not found: %s" % path) from None
    except OSError as exc:
        raise SomaRuntimeError("use.python.load: cannot read %s: %s" % (path, exc)) from None
    vm.execute_code(text, path)


def register(vm):
    vm.register_extension_builtin("use.python.call", call)
    vm.register_extension_builtin("use.python.import", import_module)
    vm.register_extension_builtin("use.python.load", load)


def soma_setup():
    # Helpers over a call's [result, exception] pair; core builtins only, so they
    # work without the stdlib.
    return """
{ >isVoid } !use.python.succeeded                    ) [exception] -> [True if the call worked]
{ >isVoid False True >choose } !use.python.failed    ) [exception] -> [True if the call raised]
{ !_.exception } !use.python.getResult               ) [result, exception] -> [result]
{ !_.exception !_.result _.exception } !use.python.getException  ) [result, exception] -> [exception]
"""
