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
    while written < bytes {
        line.clear();
        let words_in_line = rng.between(8, 16);
        for index in 0..words_in_line {
            if index > 0 {
                line.push(b' ');
            }
            for _ in 0..rng.between(1, 12) {
                line.push(b'a' + rng.between(0, 25) as u8);
            }
        }
        line.push(b'\n');
        // The last line is cut to fit the size; a cut word is still a word.
        let room = (bytes - written).min(line.len() as u64) as usize;
        words += count_words(&line[..room]);
        out.write_all(&line[..room])?;
        written += room as u64;
    }
    Ok(words)
}

/// Words in `bytes`: maximal runs of bytes that are not ASCII whitespace
/// (space, tab, newline, vertical tab, form feed, carriage return). For
/// printable text (the generated corpus included) this is what
/// `LC_ALL=C wc -w` counts; GNU wc 9 also refuses to start a word at a
/// control byte or a byte above 127, so on such bytes the two can differ.
/// The one-thread reference the lessons compare against.
pub fn count_words(bytes: &[u8]) -> u64 {
    let mut words = 0;
    let mut in_word = false;
    for &b in bytes {
        let space = matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        if !space && !in_word {
            words += 1;
        }
        in_word = !space;
    }
    words
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
            assert_eq!(words, count_words(&text), "size {size}");
            assert!(text.is_ascii());
        }
    }

    #[test]
    fn counting_follows_wc() {
        assert_eq!(count_words(b""), 0);
        assert_eq!(count_words(b"  \t\n"), 0);
        assert_eq!(count_words(b"one"), 1);
        assert_eq!(count_words(b" one  two\tthree\r\nfour\x0bfive\x0csix "), 6);
        // Bytes that are not ASCII whitespace are word bytes, UTF-8 or not.
        assert_eq!(count_words(b"caf\xc3\xa9 \xff\xfe x"), 3);
    }
}
