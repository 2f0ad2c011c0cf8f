// Peer of benches/programs/string_build.soma: one string grows by 16,384
// appends of "ab"; another doubles "ab" 14 times; they must be equal (32,768
// characters). SOMA strings are immutable values, so every concatenation
// makes a new string (as `concat` does) rather than appending in place. The
// SOMA Store cells (piece, s, i, t, j) live in `Store`, reached through
// `black_box` every round.
mod harness;

use std::hint::black_box;

struct Store {
    piece: String,
    s: String,
    i: i64,
    t: String,
    j: i64,
}

fn concat(front: &str, back: &str) -> String {
    let mut joined = String::with_capacity(front.len() + back.len());
    joined.push_str(front);
    joined.push_str(back);
    joined
}

fn run() -> String {
    let mut store = Store { piece: "ab".to_string(), s: String::new(), i: 0, t: String::new(), j: 0 };
    loop {
        let st = black_box(&mut store);
        st.s = concat(&st.s, &st.piece);
        st.i += 1;
        if !(st.i < 16384) {
            break;
        }
    }
    store.t = store.piece.clone();
    loop {
        let st = black_box(&mut store);
        st.t = concat(&st.t, &st.t);
        st.j += 1;
        if !(st.j < 14) {
            break;
        }
    }
    assert!(store.s == store.t, "strings differ");
    "strings ok".to_string()
}

fn main() {
    harness::main(run)
}
