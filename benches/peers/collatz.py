"""Peer of benches/programs/collatz.soma: total Collatz steps of every start
value 1..3000 (= 215063). The SOMA program keeps its state in Store cells
(c.n, c.steps, total, i); here they are module globals, and the step count of
one start value is a function call, as `>collatz` is a block call."""

from harness import main

c_n = 0
c_steps = 0
total = 0
i = 0


def collatz(n):
    global c_n, c_steps
    c_n = n
    c_steps = 0
    if c_n > 1:
        while True:
            if c_n % 2 == 0:
                c_n = c_n // 2
            else:
                c_n = c_n * 3 + 1
            c_steps = c_steps + 1
            if not c_n > 1:
                break
    return c_steps


def run():
    global total, i
    total = 0
    i = 1
    while True:
        total = collatz(i) + total
        i = i + 1
        if not i <= 3000:
            break
    if total != 215063:
        raise SystemExit("collatz gave the wrong total")
    return "collatz ok"


if __name__ == "__main__":
    main(run)
