//! The work the lesson shares out: counting the words of a text as
//! `LC_ALL=C wc -w` does, and cutting a text into chunks that count apart.

use std::ops::Range;

/// The bytes that separate words: ASCII whitespace, as in `LC_ALL=C wc -w`.
pub fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The words in `bytes`, as GNU `wc -w` 9.1 counts them in the C locale:
/// whitespace ends a word, a printable byte starts one, and every other byte
/// (control, NUL, 128 and up) does neither: `a\x01b` is one word, `\x01` none.
pub fn count_words(bytes: &[u8]) -> u64 {
    let mut words = 0;
    let mut in_word = false;
    for &byte in bytes {
        if is_space(byte) {
            in_word = false;
        } else if byte.is_ascii_graphic() {
            words += u64::from(!in_word);
            in_word = true;
        }
    }
    words
}

/// Cuts `text` into `chunks` ranges of about equal length, in order. A cut
/// inside a word would count it twice, so each cut moves on to the next
/// whitespace byte, where no word is open: as `count_words` starts.
pub fn chunk_bounds(text: &[u8], chunks: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::with_capacity(chunks);
    let mut start = 0;
    for index in 1..=chunks {
        let mut end = (text.len() * index / chunks).max(start);
        while end < text.len() && !is_space(text[end]) {
            end += 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}
