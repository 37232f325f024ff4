//! The committed schema.graphql matches the code, and the code's schema keeps every name, argument,
//! enum value and nullability of the public contract (../shared/api/contract.graphql).

use std::collections::BTreeMap;

use async_graphql::parser::{
    parse_schema,
    types::{TypeKind, TypeSystemDefinition},
};

const FIX: &str = "run `cargo run -- schema > schema.graphql` and commit it";

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}; {FIX}"));
    let generated = medgraph::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql differs from the code's schema: {FIX}"
    );
}

/// Every type of a schema, flattened: "Type" → kind, "Type.field" → type, "Type.field(arg)" → type,
/// "Enum::VALUE" → "".
fn shape(sdl: &str) -> BTreeMap<String, String> {
    let doc = parse_schema(sdl).unwrap_or_else(|e| panic!("schema does not parse: {e}"));
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let name = ty.name.node.to_string();
        match ty.kind {
            TypeKind::Scalar => {
                out.insert(name, "scalar".into());
            }
            TypeKind::Object(object) => {
                out.insert(name.clone(), "type".into());
                for field in object.fields {
                    let field = field.node;
                    out.insert(
                        format!("{name}.{}", field.name.node),
                        field.ty.node.to_string(),
                    );
                    for arg in field.arguments {
                        let arg = arg.node;
                        out.insert(
                            format!("{name}.{}({})", field.name.node, arg.name.node),
                            arg.ty.node.to_string(),
                        );
                    }
                }
            }
            TypeKind::InputObject(input) => {
                out.insert(name.clone(), "input".into());
                for field in input.fields {
                    let field = field.node;
                    out.insert(
                        format!("{name}.{}", field.name.node),
                        field.ty.node.to_string(),
                    );
                }
            }
            TypeKind::Enum(e) => {
                out.insert(name.clone(), "enum".into());
                for value in e.values {
                    out.insert(format!("{name}::{}", value.node.value.node), String::new());
                }
            }
            TypeKind::Interface(_) => {
                out.insert(name, "interface".into());
            }
            TypeKind::Union(_) => {
                out.insert(name, "union".into());
            }
        }
    }
    out
}

fn contract_breaks(contract: &str, ours: &str) -> Vec<String> {
    let ours = shape(ours);
    let mut problems = Vec::new();
    for (key, expected) in shape(contract) {
        match ours.get(&key) {
            None => problems.push(format!("missing: {key}")),
            Some(actual) if *actual != expected => problems.push(format!(
                "changed: {key}: contract says {expected}, schema has {actual}"
            )),
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn schema_keeps_every_name_and_nullability_of_the_contract() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/api/contract.graphql"
    );
    let Ok(contract) = std::fs::read_to_string(path) else {
        eprintln!(
            "skipping: {path} is not present (it sits beside the repo in CI and dev sessions)"
        );
        return;
    };
    let problems = contract_breaks(&contract, &medgraph::graphql::sdl());
    assert!(
        problems.is_empty(),
        "the schema breaks the public contract:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_contract_check_catches_renames_and_nullability_changes() {
    let contract =
        "type Query { me: User! }\ntype User { id: ID! name: String }\nenum Role { USER ADMIN }";
    assert!(contract_breaks(contract, contract).is_empty());
    let renamed = "type Query { me: User! }\ntype User { id: ID! fullName: String }\nenum Role { USER ADMIN }";
    assert_eq!(
        contract_breaks(contract, renamed),
        vec!["missing: User.name"]
    );
    let nullability =
        "type Query { me: User }\ntype User { id: ID! name: String }\nenum Role { USER ADMIN }";
    assert_eq!(
        contract_breaks(contract, nullability),
        vec!["changed: Query.me: contract says User!, schema has User"]
    );
    let enum_value =
        "type Query { me: User! }\ntype User { id: ID! name: String }\nenum Role { USER }";
    assert_eq!(
        contract_breaks(contract, enum_value),
        vec!["missing: Role::ADMIN"]
    );
}
