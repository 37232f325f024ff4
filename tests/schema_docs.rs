//! Every type, field, argument and enum value of the schema has a description (codegen users read them
//! in their editors), and every deprecation says why.

use async_graphql::parser::{
    parse_schema,
    types::{TypeKind, TypeSystemDefinition},
};

/// Built-in scalars are described by the GraphQL specification itself.
const BUILT_IN: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

fn undocumented(sdl: &str) -> Vec<String> {
    let doc = parse_schema(sdl).unwrap_or_else(|e| panic!("schema does not parse: {e}"));
    let mut missing = Vec::new();
    let mut check = |what: String, description: bool| {
        if !description {
            missing.push(what);
        }
    };
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let name = ty.name.node.to_string();
        if BUILT_IN.contains(&name.as_str()) {
            continue;
        }
        check(name.clone(), ty.description.is_some());
        match ty.kind {
            TypeKind::Object(object) => {
                for field in object.fields {
                    let field = field.node;
                    check(
                        format!("{name}.{}", field.name.node),
                        field.description.is_some(),
                    );
                    for arg in field.arguments {
                        check(
                            format!("{name}.{}({})", field.name.node, arg.node.name.node),
                            arg.node.description.is_some(),
                        );
                    }
                }
            }
            TypeKind::InputObject(input) => {
                for field in input.fields {
                    check(
                        format!("{name}.{}", field.node.name.node),
                        field.node.description.is_some(),
                    );
                }
            }
            TypeKind::Enum(e) => {
                for value in e.values {
                    check(
                        format!("{name}::{}", value.node.value.node),
                        value.node.description.is_some(),
                    );
                }
            }
            _ => {}
        }
    }
    missing
}

#[test]
fn every_schema_item_has_a_description() {
    let missing = undocumented(&medgraph::graphql::sdl());
    assert!(
        missing.is_empty(),
        "undocumented schema items ({}):\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn every_deprecation_gives_a_reason() {
    let sdl = medgraph::graphql::sdl();
    for line in sdl.lines().filter(|l| l.contains("@deprecated")) {
        assert!(
            line.contains("@deprecated(reason:"),
            "deprecated without a reason: {line}"
        );
    }
}

#[test]
fn the_check_notices_an_undocumented_field() {
    let sdl = "\"\"\"A thing.\"\"\"\ntype Query {\n  \"\"\"Documented.\"\"\"\n  a: Int\n  b(x: Int): Int\n}";
    assert_eq!(undocumented(sdl), vec!["Query.b", "Query.b(x)"]);
}
