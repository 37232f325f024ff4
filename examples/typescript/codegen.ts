// graphql-codegen: typed documents for the example operations.
//
// Reads the server's schema (../../schema.graphql, kept in sync with the server by the contract test) and the
// operations in ../*.graphql (the same files GraphiQL and the README use), and writes src/gql/: one TypeScript
// type per schema type, one result/variables type pair per operation, and a TypedDocumentNode per operation
// (`RegisterDocument`, `LoginDocument`, ...) that urql and Apollo Client infer result and variable types from.
//
// The generated files are committed; scripts/typescript-check.sh regenerates them and fails when they differ,
// and `tsc --noEmit` then fails when a schema change breaks an operation or src/flow.ts.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["../*.graphql"],
  // Relative imports inside src/gql/ carry a `.js` extension, as Node's ES module resolution requires.
  importExtension: ".js",
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: {
        // The examples use no fragments.
        fragmentMasking: false,
      },
      config: {
        // Both custom scalars travel as strings: DateTime as RFC 3339 (e.g. 2024-05-01T12:00:00Z),
        // Date as YYYY-MM-DD.
        scalars: {
          DateTime: "string",
          Date: "string",
        },
        strictScalars: true,
        useTypeImports: true,
        enumsAsTypes: true,
        avoidOptionals: false,
      },
    },
  },
};

export default config;
