//! Schema tooling works within the limits: GraphiQL's and codegen's standard introspection query (which
//! nests ofType about 14 deep) is answered, while ordinary documents keep the default depth limit.

mod common;

use common::scenario;

use serde_json::json;

/// graphql-js `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
/// directiveIsRepeatable: true, inputValueDeprecation: true })`, as GraphiQL 4 sends it.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType { kind name }
              }
            }
          }
        }
      }
    }
  }
}
"#;

scenario!(
    the_standard_introspection_query_is_answered_within_the_limits,
    |app| async move {
        let response = app.gql(None, INTROSPECTION_QUERY, json!({})).await;
        let schema = &response.data()["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query");
        assert_eq!(schema["subscriptionType"]["name"], "Subscription");
        let types = schema["types"].as_array().expect("types");
        assert!(types.iter().any(|t| t["name"] == "Patient"));

        // The deeper allowance is for introspection only: a deep ordinary document is still refused.
        let deep = "{ patients(first: 1) { nodes { doctors { patients { doctors { patients { doctors { patients { doctors { id } } } } } } } } } }";
        let refused = app
            .gql(app.signed_in_user().await.token(), deep, json!({}))
            .await;
        assert!(
            !refused.errors().is_empty(),
            "a 13-deep ordinary query must be refused: {:?}",
            refused.body
        );
    }
);

scenario!(
    introspection_mixed_with_data_fields_gets_the_ordinary_limits,
    |app| async move {
        let user = app.signed_in_user().await;
        let mixed = format!(
            "{{ me {{ id }} {} }}",
            "__type(name: \"Patient\") { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }"
        );
        let response = app.gql(user.token(), &mixed, json!({})).await;
        assert!(!response.errors().is_empty(), "{:?}", response.body);
        assert!(
            response.errors()[0]["message"]
                .as_str()
                .unwrap_or("")
                .contains("nested too deep"),
            "{:?}",
            response.body
        );
    }
);
