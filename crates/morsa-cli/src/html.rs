//! What the HTML pages the CLI writes and serves (the drill report, the status page) share.

/// `text` made safe to put in HTML text or a double-quoted attribute: every character HTML
/// gives a meaning there (`&`, `<`, `>`, `"`, `'`) written as an entity.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_becomes_an_entity() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain 127.0.0.1:80 ünïcode"), "plain 127.0.0.1:80 ünïcode");
    }
}
