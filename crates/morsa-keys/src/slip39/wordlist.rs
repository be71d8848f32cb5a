//! The SLIP-39 wordlist: 1024 English words, alphabetically sorted, each with a unique
//! four-letter prefix (the data file is the list published with the specification).

use std::sync::OnceLock;

const TEXT: &str = include_str!("wordlist.txt");

/// The 1024 words, in index order.
pub fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let words: Vec<&str> = TEXT.lines().map(str::trim).filter(|word| !word.is_empty()).collect();
        assert_eq!(words.len(), 1024, "the SLIP-39 wordlist has 1024 words");
        words
    })
}

/// The word with index `index` (below 1024).
pub fn word(index: u16) -> &'static str {
    words()[usize::from(index)]
}

/// The index of `word` (case-insensitive), if it is on the list.
pub fn index(word: &str) -> Option<u16> {
    let lower = word.to_ascii_lowercase();
    words().binary_search(&lower.as_str()).ok().and_then(|index| u16::try_from(index).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_with_unique_prefixes_and_indexes_round_trip() {
        let words = words();
        assert!(words.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(words.windows(2).all(|pair| pair[0][..4] != pair[1][..4]));
        assert_eq!(word(0), "academic");
        assert_eq!(word(1023), "zero");
        for i in 0..1024 {
            assert_eq!(index(word(i)), Some(i));
        }
        assert_eq!(index("Academic"), Some(0));
        assert_eq!(index("bitcoin"), None);
    }
}
