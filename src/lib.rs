//! medgraph: a healthcare backend served as a single GraphQL API.

pub mod app;
pub mod auth;
pub mod batched_creates;
pub mod cli;
pub mod config;
pub mod domain;
pub mod entities;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod observability;
pub mod point_reads;
pub mod reads;
pub mod services;
pub mod telemetry;
