//! Text values: emails, person names and free text, trimmed and bounded.

/// An email address, trimmed and lower-cased, so uniqueness is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must be a valid email address".into());
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err("must be a valid email address".into());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Required text such as a name: trimmed, 1..=max characters, no control characters.
pub struct RequiredText;

impl RequiredText {
    pub fn parse(raw: &str, max: usize) -> Result<String, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        check_text(value, max, false)?;
        Ok(value.to_owned())
    }
}

/// A person's name: 1..=100 characters after trimming.
pub struct PersonName;

impl PersonName {
    pub const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<String, String> {
        RequiredText::parse(raw, Self::MAX)
    }
}

/// Optional free text: trimmed; empty becomes `None`; newlines allowed where `multiline`.
pub struct OptionalText;

impl OptionalText {
    pub fn parse(raw: Option<&str>, max: usize, multiline: bool) -> Result<Option<String>, String> {
        let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        check_text(value, max, multiline)?;
        Ok(Some(value.to_owned()))
    }
}

fn check_text(value: &str, max: usize, multiline: bool) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let bad_control = value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')));
    if bad_control {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").map(Email::into_inner),
            Ok("alice@example.com".into())
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@@b.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada  "), Ok("Ada".into()));
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert!(PersonName::parse("Ada\u{0}").is_err());
    }

    #[test]
    fn optional_text_treats_blank_as_absent() {
        assert_eq!(OptionalText::parse(Some("  "), 10, false), Ok(None));
        assert_eq!(
            OptionalText::parse(Some("line\nline"), 20, true),
            Ok(Some("line\nline".into()))
        );
        assert!(OptionalText::parse(Some("line\nline"), 20, false).is_err());
    }
}
