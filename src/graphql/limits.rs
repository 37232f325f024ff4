//! Query-shape limits that async-graphql does not have built in: tokens and aliases. Checked on the raw
//! document before execution (the token count even before parsing, so a huge document costs little).

use async_graphql::parser::{
    parse_query,
    types::{ExecutableDocument, Selection, SelectionSet},
};

/// Counts lexical tokens (names, numbers, strings, punctuators); comments, whitespace and commas are
/// ignored as the GraphQL grammar does. Stops counting past `max`.
pub fn count_tokens(query: &str, max: usize) -> usize {
    let bytes = query.as_bytes();
    let mut i = 0;
    let mut count = 0;
    while i < bytes.len() && count <= max {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | 0xEF | 0xBB | 0xBF => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                count += 1;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                count += 1;
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                count += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
            }
            _ => {
                count += 1;
                i += 1;
            }
        }
    }
    count
}

/// Aliased fields in the document (fragments included, each counted once). `__typename` aliases are free.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    let own = usize::from(
                        field.node.alias.is_some() && field.node.name.node != "__typename",
                    );
                    own + walk(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum();
    let fragments: usize = document
        .fragments
        .values()
        .map(|f| walk(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// What the handler needs to know about a document that passed the limits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DocumentInfo {
    /// The operation name when the document has exactly one named operation (for metrics and logs).
    pub operation_name: Option<String>,
    /// Whether it selects `__schema` or `__type` anywhere.
    pub introspects: bool,
    /// Whether its operations select only `__schema`, `__type` and `__typename` (schema tooling).
    pub introspection_only: bool,
    /// Whether the response cache may keep its answers (`response_cache::cacheable`).
    pub cacheable: bool,
}

/// A document that passed the limits: what the handler needs, and the parsed document for the executor
/// (`None` when it does not parse; the executor then reports the syntax error with its position).
#[derive(Debug)]
pub struct Checked {
    pub info: DocumentInfo,
    pub document: Option<ExecutableDocument>,
}

/// Checks a document against the token and alias limits; the error says which limit was hit.
pub fn check(query: &str, max_tokens: usize, max_aliases: usize) -> Result<Checked, String> {
    if count_tokens(query, max_tokens) > max_tokens {
        return Err(format!("Query too large: more than {max_tokens} tokens"));
    }
    let Ok(document) = parse_query(query) else {
        return Ok(Checked {
            info: DocumentInfo::default(),
            document: None,
        });
    };
    let aliases = count_aliases(&document);
    if aliases > max_aliases {
        return Err(format!(
            "Too many aliases: {aliases} (at most {max_aliases})"
        ));
    }
    let mut names = document.operations.iter().map(|(name, _)| name);
    let operation_name = match (names.next(), names.next()) {
        (Some(Some(name)), None) => Some(name.to_string()),
        _ => None,
    };
    let introspection_only = document.operations.iter().all(|(_, op)| {
        op.node
            .selection_set
            .node
            .items
            .iter()
            .all(|item| match &item.node {
                Selection::Field(f) => matches!(
                    f.node.name.node.as_str(),
                    "__schema" | "__type" | "__typename"
                ),
                _ => false,
            })
    });
    let info = DocumentInfo {
        operation_name,
        introspects: introspects(&document),
        introspection_only,
        cacheable: crate::graphql::response_cache::cacheable(&document),
    };
    Ok(Checked {
        info,
        document: Some(document),
    })
}

fn introspects(document: &ExecutableDocument) -> bool {
    fn walk(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type")
                    || walk(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    document
        .operations
        .iter()
        .any(|(_, op)| walk(&op.node.selection_set.node))
        || document
            .fragments
            .values()
            .any(|f| walk(&f.node.selection_set.node))
}

/// Assumed size of an unpaginated nested list (a patient's doctors, a doctor's patients) when costing.
pub const NESTED_LIST_FACTOR: usize = 10;

/// Cost of a paginated list field: its page size times the cost of one item.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let first = usize::try_from(first.unwrap_or(crate::services::pagination::DEFAULT_PAGE_SIZE))
        .unwrap_or(0);
    first.max(1).saturating_mul(child_complexity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_counted_like_the_grammar() {
        assert_eq!(count_tokens("{ __typename }", 100), 3);
        assert_eq!(
            count_tokens("query Q($a: Int = 1) { f(a: $a) # comment\n }", 100),
            19
        );
        assert_eq!(count_tokens(r#"{ f(s: "a \" b, c") }"#, 100), 8);
        assert_eq!(count_tokens("{ ...F }", 100), 4);
        assert!(
            count_tokens(&"{ a ".repeat(10_000), 50) <= 51,
            "stops early"
        );
    }

    #[test]
    fn aliases_are_counted_except_typename() {
        let doc = parse_query(
            "{ a: me { id } b: me { id } t: __typename ...F } fragment F on Query { c: me { id } }",
        )
        .expect("parses");
        assert_eq!(count_aliases(&doc), 3);
    }

    #[test]
    fn the_error_names_the_limit() {
        assert!(
            check("{ a: me { id } b: me { id } }", 100, 1)
                .expect_err("too many")
                .contains("aliases")
        );
        assert!(
            check("{ me { id name email } }", 5, 15)
                .expect_err("too big")
                .contains("tokens")
        );
        let plain = check("{ me { id } }", 100, 15).expect("ok");
        assert_eq!(plain.info, DocumentInfo::default());
        assert!(plain.document.is_some());
        assert!(check("{ me { id ", 100, 15).expect("ok").document.is_none());
        let named = check("query Me { me { id } }", 100, 15).expect("ok").info;
        assert_eq!(named.operation_name.as_deref(), Some("Me"));
        assert!(
            check(r#"{ a: __type(name: "User") { name } }"#, 100, 15)
                .expect("ok")
                .info
                .introspects
        );
        let fragment = "{ ...F } fragment F on Query { __schema { types { name } } }";
        assert!(check(fragment, 100, 15).expect("ok").info.introspects);
        assert!(
            !check("{ __typename }", 100, 15)
                .expect("ok")
                .info
                .introspects
        );
        assert!(
            check("query I { __schema { types { name } } }", 100, 15)
                .expect("ok")
                .info
                .introspection_only
        );
        assert!(
            !check("{ __schema { types { name } } me { id } }", 100, 15)
                .expect("ok")
                .info
                .introspection_only
        );
    }
}
