//! The parameters of a GraphQL GET request (`query`, `operationName`, `variables`, `extensions`), as the
//! GraphQL-over-HTTP specification names them. async-graphql's own parser expects `operation_name` and
//! decodes invalid UTF-8 lossily; a request with bytes we cannot read must be refused, not guessed at.

use async_graphql::Request;
use percent_encoding::percent_decode;

/// Parses a URL query string into a request; the error says which parameter is wrong.
pub fn parse(query_string: &str) -> Result<Request, String> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for pair in query_string.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        let slot = match name.as_str() {
            "query" => &mut query,
            "operationName" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            // Other parameters (cache busters, tracking) are not ours to refuse.
            _ => continue,
        };
        if slot.replace(decode(value)?).is_some() {
            return Err(format!("the `{name}` parameter is given more than once"));
        }
    }
    let json = |name: &str, text: Option<String>| -> Result<Option<serde_json::Value>, String> {
        match text.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("`{name}` is not valid JSON: {e}")),
        }
    };
    let mut request = Request::new(query.unwrap_or_default());
    request.operation_name = operation_name.filter(|name| !name.is_empty());
    if let Some(value) = json("variables", variables)? {
        request.variables = serde_json::from_value(value)
            .map_err(|_| "`variables` must be a JSON object".to_owned())?;
    }
    if let Some(value) = json("extensions", extensions)? {
        request.extensions = serde_json::from_value(value)
            .map_err(|_| "`extensions` must be a JSON object".to_owned())?;
    }
    Ok(request)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let spaced = text.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| "the query string is not valid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parameters_the_specification_names() {
        let request = parse(
            "query=query%20A%7Bme%7Bid%7D%7D+query+B%7B__typename%7D&operationName=B&variables=%7B%22x%22%3A1%7D&_=123",
        )
        .expect("parses");
        assert_eq!(request.query, "query A{me{id}} query B{__typename}");
        assert_eq!(request.operation_name.as_deref(), Some("B"));
        assert_eq!(
            serde_json::to_value(&request.variables).expect("json"),
            serde_json::json!({"x": 1})
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(
            parse("query=%7B%FF%7D")
                .expect_err("bytes")
                .contains("UTF-8")
        );
        assert!(
            parse("query=a&query=b")
                .expect_err("twice")
                .contains("more than once")
        );
        assert!(
            parse("query=a&variables=%5B1%5D")
                .expect_err("array")
                .contains("object")
        );
        assert!(
            parse("query=a&variables=%7B")
                .expect_err("json")
                .contains("JSON")
        );
    }
}
