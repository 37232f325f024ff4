//! A bounded cache of checked, parsed documents keyed by their text. Clients send the same few
//! operations again and again; without it every request parsed its document twice (once for the
//! limits, once to execute), a measurable share of a point read's CPU.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::ExecutableDocument,
};
use lru::LruCache;

use crate::graphql::limits::{self, Checked};

/// Documents kept. With `MAX_CACHED_QUERY_BYTES` this bounds the cache to a few MiB (an AST is about
/// ten times its text), so unique documents sent by a scanner cannot grow memory.
const CAPACITY: usize = 256;
/// Longer documents are checked and parsed on every request, as before (they are rare: app operations
/// and GraphiQL's introspection query are a few KiB at most).
const MAX_CACHED_QUERY_BYTES: usize = 8 * 1024;

pub struct DocumentCache {
    max_tokens: usize,
    max_aliases: usize,
    entries: Mutex<LruCache<Box<str>, Arc<Checked>>>,
}

impl DocumentCache {
    pub fn new(max_tokens: usize, max_aliases: usize) -> Self {
        DocumentCache {
            max_tokens,
            max_aliases,
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// `limits::check` for `query`, from the cache when the same text passed before. Only documents that
    /// passed the limits and parsed are kept: a rejected one is checked again (and rejected) each time.
    pub fn check(&self, query: &str) -> Result<Arc<Checked>, String> {
        if let Some(hit) = self
            .entries
            .lock()
            .ok()
            .and_then(|mut entries| entries.get(query).cloned())
        {
            return Ok(hit);
        }
        let checked = Arc::new(limits::check(query, self.max_tokens, self.max_aliases)?);
        if checked.document.is_some()
            && query.len() <= MAX_CACHED_QUERY_BYTES
            && let Ok(mut entries) = self.entries.lock()
        {
            entries.put(query.into(), checked.clone());
        }
        Ok(checked)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The token and alias limits as a schema extension, so every transport gets them: the HTTP handler
/// checks first (to answer with HTTP status codes), and subscriptions over WebSocket are checked here.
/// A document the handler already checked is a cache hit.
pub struct ShapeLimits(pub Arc<DocumentCache>);

impl ExtensionFactory for ShapeLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ShapeLimitsExtension(self.0.clone()))
    }
}

struct ShapeLimitsExtension(Arc<DocumentCache>);

#[async_graphql::async_trait::async_trait]
impl Extension for ShapeLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // An empty query is a persisted one (APQ): its text was checked when it was registered.
        if !query.is_empty() {
            self.0
                .check(query)
                .map_err(|message| ServerError::new(message, None))?;
        }
        next.run(ctx, query, variables).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_then_served_from_the_cache() {
        let cache = DocumentCache::new(1_000, 15);
        let first = cache.check("query Me { me { id } }").expect("passes");
        let second = cache.check("query Me { me { id } }").expect("passes");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(second.info.operation_name.as_deref(), Some("Me"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn rejected_unparsable_and_long_documents_are_not_kept() {
        let cache = DocumentCache::new(1_000, 1);
        assert!(cache.check("{ a: me { id } b: me { id } }").is_err());
        assert!(
            cache
                .check("{ me { id ")
                .expect("reported later")
                .document
                .is_none()
        );
        let long = format!("{{ me {{ id }} }}{}", " ".repeat(MAX_CACHED_QUERY_BYTES));
        assert!(cache.check(&long).expect("passes").document.is_some());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = DocumentCache::new(1_000, 15);
        for i in 0..CAPACITY + 50 {
            cache
                .check(&format!("query Q{i} {{ me {{ id }} }}"))
                .expect("passes");
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
