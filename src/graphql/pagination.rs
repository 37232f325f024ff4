//! Relay-style connections (edges, nodes, pageInfo, totalCount) built from a service `Page`.

use async_graphql::SimpleObject;

use crate::{
    graphql::{doctors::Doctor, mappings::Mapping, patients::Patient},
    services::pagination::Page,
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

/// Declares the edge and connection types of one node type (concrete types: they are the contract's names).
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("A ", $what, " on a page, with its opaque cursor.")]
        #[derive(SimpleObject)]
        pub struct $edge {
            /// Opaque position of this item; pass it as `after` to continue after it.
            pub cursor: String,
            /// The item.
            pub node: $node,
        }

        #[doc = concat!("One page of ", $what, "s.")]
        #[derive(SimpleObject)]
        pub struct $connection {
            /// The items with their cursors.
            pub edges: Vec<$edge>,
            /// The items alone, for clients that need no cursors.
            pub nodes: Vec<$node>,
            /// Paging state.
            pub page_info: PageInfo,
            /// Number of items in the whole (filtered) list, across all pages.
            pub total_count: i64,
        }

        impl $connection {
            pub fn from_page<M>(page: Page<M>, convert: impl Fn(M) -> $node) -> Self {
                let edges: Vec<$edge> = page
                    .items
                    .into_iter()
                    .map(|(cursor, model)| $edge {
                        cursor,
                        node: convert(model),
                    })
                    .collect();
                let page_info = PageInfo {
                    has_next_page: page.has_next_page,
                    has_previous_page: page.has_previous_page,
                    start_cursor: edges.first().map(|e| e.cursor.clone()),
                    end_cursor: edges.last().map(|e| e.cursor.clone()),
                };
                $connection {
                    nodes: edges.iter().map(|e| e.node.clone()).collect(),
                    edges,
                    page_info,
                    total_count: i64::try_from(page.total_count).unwrap_or(i64::MAX),
                }
            }
        }
    };
}

connection!(PatientConnection, PatientEdge, Patient, "patient");
connection!(DoctorConnection, DoctorEdge, Doctor, "doctor");
connection!(MappingConnection, MappingEdge, Mapping, "mapping");
