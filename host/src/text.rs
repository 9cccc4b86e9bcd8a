//! Cutting guest-controlled text to a byte bound without splitting a UTF-8 character: log
//! lines, status messages and Event notes all come from tenants and all have size limits.

/// The longest prefix of `text` that is at most `max` bytes and ends on a character boundary.
pub fn prefix_within(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::prefix_within;

    #[test]
    fn a_cut_never_splits_a_character() {
        let text = "aé€😀";
        for max in 0..=text.len() + 1 {
            let prefix = prefix_within(text, max);
            assert!(prefix.len() <= max, "{max}: {prefix:?}");
            assert!(text.starts_with(prefix));
        }
        assert_eq!(prefix_within(text, 2), "a");
        assert_eq!(prefix_within(text, 3), "aé");
        assert_eq!(prefix_within(text, 100), text);
    }
}
