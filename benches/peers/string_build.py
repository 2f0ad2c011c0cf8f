"""Peer of benches/programs/string_build.soma: one string grows by 16,384
appends of "ab"; another doubles "ab" 14 times; they must be equal (32,768
characters). The SOMA Store cells (piece, s, i, t, j) are module globals."""

from harness import main

piece = s = t = ""
i = j = 0


def run():
    global piece, s, i, t, j
    piece = "ab"
    s = ""
    i = 0
    while True:
        s = s + piece
        i = i + 1
        if not i < 16384:
            break
    t = piece
    j = 0
    while True:
        t = t + t
        j = j + 1
        if not j < 14:
            break
    if s != t:
        raise SystemExit("strings differ")
    return "strings ok"


if __name__ == "__main__":
    main(run)
