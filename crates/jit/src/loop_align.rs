//! Loop alignment: the header of a chained loop's native loop starts a cache line.
//!
//! A processor fetches code by aligned blocks (32 or 64 bytes). A loop of a few instructions
//! that fits in one block runs a round per cycle or so; the same instructions straddling a
//! boundary need two fetches per round. Where a loop starts depends on everything before it in
//! the function, so an unrelated change to a pre-header moved chain_loop's round (four
//! branches, 25 bytes) across a line and made it 1.6 times slower (0.44 -> 0.71 ms for a
//! million rounds, identical instructions). Compilers align loop headers for this reason.
//! Cranelift does not, so the JIT does it where it installs the code:
//!
//! 1. The translator marks the instructions of the loop's header block with [`header_mark`]
//!    as their source location ([`mark_header`]).
//! 2. Code generation (with `machine_code_cfg_info`, which records where each machine block
//!    starts; set for the optimizing tier only) finds the header's offset: the start of the machine block that holds the last
//!    marked instruction ([`header_offset`]). The last one, because the header's terminator
//!    stays in its block, where pure instructions may be hoisted out of the loop. Code whose
//!    marked instructions all went (a header that became an empty fall-through) is left as
//!    it is.
//! 3. Installing the code puts padding (never executed) before the function's entry so that
//!    the header lands on a [`LINE`] boundary ([`pad_entry`]). The padding is a multiple of
//!    the code's own alignment (its constant pool's), so a loop starts at most that much past
//!    a boundary.

use cranelift_codegen::ir::{self, SourceLoc};

/// The source location that marks a loop header's instructions (the JIT sets no other).
pub fn header_mark() -> SourceLoc {
    SourceLoc::new(0x100b)
}

/// The boundary a loop header is put on.
pub const LINE: u64 = 64;

/// Mark the instructions of `header` (see the module docs).
pub fn mark_header(func: &mut ir::Function, header: ir::Block) {
    let insts: Vec<ir::Inst> = func.layout.block_insts(header).collect();
    for inst in insts {
        func.set_srcloc(inst, header_mark());
    }
}

/// The offset of the marked loop header in generated code, from the code's source-location
/// ranges and machine block starts.
pub fn header_offset(srclocs: &[(u32, SourceLoc)], block_starts: &[u32]) -> Option<u32> {
    let last_marked = srclocs.iter().rev().find(|(_, loc)| *loc == header_mark())?.0;
    block_starts.iter().copied().filter(|&s| s <= last_marked).max()
}

/// The code's bytes with padding before them that puts the header (at `head`, when known) on
/// a [`LINE`] boundary, the relocations moved with them, the alignment to install them at
/// and the padding's length (the entry is that far into the bytes). `alignment` is the
/// code's own (a power of two).
pub fn pad_entry(
    alignment: u64,
    head: Option<u32>,
    bytes: Vec<u8>,
    mut relocs: Vec<cranelift_module::ModuleReloc>,
) -> (u64, Vec<u8>, Vec<cranelift_module::ModuleReloc>, usize) {
    let Some(head) = head else { return (alignment, bytes, relocs, 0) };
    let step = alignment.clamp(1, LINE);
    // The least padding, in steps of the code's alignment, that brings the header to the
    // start of a line, or as near past it as those steps allow.
    let pad = (0..LINE / step).map(|k| k * step).min_by_key(|pad| (pad + u64::from(head)) % LINE).unwrap_or(0);
    if pad == 0 {
        return (alignment.max(LINE), bytes, relocs, 0);
    }
    let mut padded = vec![0u8; pad as usize];
    padded.extend_from_slice(&bytes);
    for r in &mut relocs {
        r.offset += pad as u32;
    }
    (alignment.max(LINE), padded, relocs, pad as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_start_of_the_block_that_holds_the_last_marked_instruction() {
        let other = SourceLoc::default();
        let mark = header_mark();
        let locs = [(0, other), (10, mark), (20, other), (40, mark), (44, other)];
        assert_eq!(header_offset(&locs, &[0, 8, 36, 48]), Some(36));
        assert_eq!(header_offset(&[(0, other)], &[0, 8]), None, "nothing marked");
    }

    #[test]
    fn padding_puts_the_header_on_a_line_in_steps_of_the_code_alignment() {
        let pad = |alignment, head| pad_entry(alignment, Some(head), vec![1; 100], Vec::new());
        let (a, bytes, _, n) = pad(1, 70);
        assert_eq!((a, n, bytes.len()), (64, 58, 158));
        assert_eq!((n as u32 + 70) % 64, 0);
        assert!(bytes[..n].iter().all(|&b| b == 0) && bytes[n] == 1);
        let (_, _, _, n) = pad(16, 70);
        assert_eq!((n as u32 + 70) % 64, 70 % 16, "as near past the line as 16-byte steps go");
        assert_eq!(n % 16, 0);
        assert_eq!(pad(16, 128).3, 0, "already on a line");
        assert_eq!(pad_entry(16, None, vec![1; 4], Vec::new()).3, 0, "no loop");
    }
}
