//! What the pools map, and how items cross a pipe: not itself threads or
//! processes, so kept out of the lesson's way.

/// The function every way maps over the inputs, Python's `f`: `rounds`
/// steps of a multiply-and-shift mix, so an item costs what `rounds` says
/// (about a nanosecond a round). `black_box` keeps the compiler from
/// folding the rounds away or doing several items at once in a plain loop.
pub fn work(x: u64, rounds: u32) -> u64 {
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state = x;
    for _ in 0..rounds {
        state = std::hint::black_box(state ^ (state >> 29)).wrapping_mul(MIX).wrapping_add(1);
    }
    state
}

/// The reference, no pool at all: every way of the lesson must give back
/// exactly this, in this order.
pub fn plain_loop(inputs: &[u64], rounds: u32) -> Vec<u64> {
    inputs.iter().map(|&x| work(x, rounds)).collect()
}

/// Numbers as the bytes that cross a pipe: 8 little-endian bytes each.
pub fn to_bytes<'a>(words: impl IntoIterator<Item = &'a u64>) -> Vec<u8> {
    words.into_iter().flat_map(|word| word.to_le_bytes()).collect()
}

/// Bytes read from a pipe as numbers (a length that is a multiple of 8).
pub fn from_bytes(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes"))).collect()
}
