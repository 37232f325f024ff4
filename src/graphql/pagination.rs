//! Relay-style connections (edges, nodes, pageInfo, totalCount) built from a service `Page`.

use async_graphql::{Object, SimpleObject};

use crate::{
    graphql::{audit::AuditEvent, doctors::Doctor, mappings::Mapping, patients::Patient},
    services::pagination::{Page, Position},
};

/// Where a page sits in its list, for fetching the next one.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// True when more items follow this page.
    pub has_next_page: bool,
    /// True when this page was requested after a cursor.
    pub has_previous_page: bool,
    /// Cursor of the first item on this page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item on this page: pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Declares the edge and connection types of one node type, with the docs the SDL keeps.
macro_rules! connection {
    // The usual docs of the fields; only the two type docs differ.
    ($connection:ident, $edge:ident, $node:ty, $edge_doc:literal, $connection_doc:literal) => {
        connection!(
            $connection,
            $edge,
            $node,
            $edge_doc,
            $connection_doc,
            "Opaque position of this item; pass it as `after` to continue after it.",
            "The item.",
            "The items with their cursors.",
            "The items alone, for clients that need no cursors.",
            "Number of items in the whole (filtered) list, across all pages."
        );
    };
    ($connection:ident, $edge:ident, $node:ty, $edge_doc:literal, $connection_doc:literal,
     $cursor_doc:literal, $node_doc:literal, $edges_doc:literal, $nodes_doc:literal, $total_doc:literal) => {
        #[doc = $edge_doc]
        #[derive(SimpleObject)]
        pub struct $edge {
            #[doc = $cursor_doc]
            pub cursor: String,
            #[doc = $node_doc]
            pub node: $node,
        }

        /// A page as the service returned it: the cursors, the edges' copies of the nodes and the
        /// count are made only for the fields a client selects.
        pub struct $connection(Page<$node>);

        #[doc = $connection_doc]
        #[Object]
        impl $connection {
            #[doc = $edges_doc]
            async fn edges(&self) -> Vec<$edge> {
                self.0
                    .items
                    .iter()
                    .map(|(position, node)| $edge {
                        cursor: self.0.cursor(position),
                        node: node.clone(),
                    })
                    .collect()
            }

            #[doc = $nodes_doc]
            async fn nodes(&self) -> Vec<&$node> {
                self.0.items.iter().map(|(_, node)| node).collect()
            }

            /// Paging state.
            async fn page_info(&self) -> PageInfo {
                let cursor = |item: Option<&(Position, $node)>| {
                    item.map(|(position, _)| self.0.cursor(position))
                };
                PageInfo {
                    has_next_page: self.0.has_next_page,
                    has_previous_page: self.0.has_previous_page,
                    start_cursor: cursor(self.0.items.first()),
                    end_cursor: cursor(self.0.items.last()),
                }
            }

            #[doc = $total_doc]
            async fn total_count(&self) -> async_graphql::Result<i64> {
                // Resolvers count when the selection has `totalCount` (`counted`); a miss is a bug.
                let total = self.0.total_count.ok_or("totalCount was not counted")?;
                Ok(i64::try_from(total).unwrap_or(i64::MAX))
            }
        }

        impl $connection {
            pub fn from_page<M>(page: Page<M>, convert: impl Fn(M) -> $node) -> Self {
                $connection(page.map(convert))
            }
        }
    };
}

/// Whether a connection's selection has `totalCount`, so its list must be counted.
pub fn counted(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

connection!(
    PatientConnection,
    PatientEdge,
    Patient,
    "A patient on a page, with its opaque cursor.",
    "One page of patients."
);
connection!(
    DoctorConnection,
    DoctorEdge,
    Doctor,
    "A doctor on a page, with its opaque cursor.",
    "One page of doctors."
);
connection!(
    MappingConnection,
    MappingEdge,
    Mapping,
    "A mapping on a page, with its opaque cursor.",
    "One page of mappings."
);
connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "An item of the audit trail with its cursor.",
    "One page of audit events, newest first.",
    "Opaque position of this event.",
    "The event.",
    "The events with their cursors.",
    "The events alone.",
    "Number of events matching the filter."
);
