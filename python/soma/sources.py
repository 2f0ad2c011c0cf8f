"""Reading SOMA source files: UTF-8 text, or an OSError that names the file."""


class SourceFileError(OSError):
    """A source file that exists but is not UTF-8 text."""


def read_source(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFileError("%s: not UTF-8 text (invalid byte 0x%02x at offset %d)"
                              % (path, data[exc.start], exc.start)) from None
