"""The `math` extension: small integer words written in SOMA (`(math) >use`).

    use.math.abs      [x] -> [|x|]
    use.math.max      [a, b] -> [the larger]       use.math.min  [a, b] -> [the smaller]
    use.math.square   [x] -> [x*x]                 use.math.cube [x] -> [x*x*x]
    use.math.isEven   [n] -> [True | False]        use.math.isOdd [n] -> [True | False]

An extension with no Python builtins: `register` installs nothing and the words are the
SOMA text of `get_soma_setup`. They use core builtins only, so they work without the
stdlib; the operands must be Ints (`<`, `*`, `%` raise a type error otherwise).
"""


def register(vm):
    """Nothing to install: every word is SOMA (see get_soma_setup)."""


def get_soma_setup():
    # `choose` picks between values computed beforehand: no block runs, no stdlib needed.
    return """
{ !_.x  _.x 0 ><  0 _.x >-  _.x  >choose } !use.math.abs
{ !_.b !_.a  _.a _.b ><  _.b  _.a  >choose } !use.math.max
{ !_.b !_.a  _.a _.b ><  _.a  _.b  >choose } !use.math.min
{ !_.x  _.x _.x >* } !use.math.square
{ !_.x  _.x _.x >* _.x >* } !use.math.cube
{ 2 >% !_.r  0 _.r ><  False  True  >choose } !use.math.isEven
{ 2 >% !_.r  0 _.r >< } !use.math.isOdd
"""
