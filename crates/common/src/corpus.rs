//! A deterministic generator of text for word counting.
//!
//! Lessons that count words need a big text that is the same on every
//! machine and every run with the same seed, and whose word count is known
//! without counting it again. [`write_corpus`] streams such a text to a
//! writer: words of 1 to 12 lowercase letters, separated by single spaces,
//! with a newline every 8 to 16 words (the last line is cut to the size). It returns the
//! number of words it wrote, the ground truth that counting must match.
//!
//! [`SplitMix64`] is the small random generator behind it, also useful where
//! a lesson needs reproducible randomness (`--seed`).

use std::io::Write;

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and good enough for
/// test data and jitter. Not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high` (slightly biased for huge ranges; fine here).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        low + self.next_u64() % (high - low + 1)
    }
}

/// Writes about `bytes` bytes of text (never more) to `out`, generated from
/// `seed`, and returns how many words it wrote. Words are separated by ASCII
/// whitespace only and are printable, so `LC_ALL=C wc -w` agrees with the count.
pub fn write_corpus(out: &mut impl Write, bytes: u64, seed: u64) -> std::io::Result<u64> {
    let mut rng = SplitMix64::new(seed);
    let mut written: u64 = 0;
    let mut words: u64 = 0;
    let mut line = Vec::with_capacity(256);
    let mut word_starts = Vec::with_capacity(16);
    while written < bytes {
        line.clear();
        word_starts.clear();
        let words_in_line = rng.between(8, 16);
        for index in 0..words_in_line {
            if index > 0 {
                line.push(b' ');
            }
            word_starts.push(line.len());
            for _ in 0..rng.between(1, 12) {
                line.push(b'a' + rng.between(0, 25) as u8);
            }
        }
        line.push(b'\n');
        // The last line is cut to fit the size; a cut word is still a word,
        // so a word counts if its first letter was written.
        let room = (bytes - written).min(line.len() as u64) as usize;
        words += word_starts.iter().filter(|&&start| start < room).count() as u64;
        out.write_all(&line[..room])?;
        written += room as u64;
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_text() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        write_corpus(&mut a, 10_000, 7).unwrap();
        write_corpus(&mut b, 10_000, 7).unwrap();
        write_corpus(&mut c, 10_000, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn size_and_count_are_exact() {
        for size in [0, 1, 5, 99, 4096, 100_003] {
            let mut text = Vec::new();
            let words = write_corpus(&mut text, size, 42).unwrap();
            assert_eq!(text.len() as u64, size);
            let counted = text.split(|b| *b == b' ' || *b == b'\n').filter(|w| !w.is_empty()).count();
            assert_eq!(words, counted as u64, "size {size}");
            assert!(text.iter().all(|b| b.is_ascii_lowercase() || *b == b' ' || *b == b'\n'));
        }
    }
}
