package client

// The client is generated from the document the server serves at
// GET /api/v1/openapi.json, with the generator pinned by the tool line in
// go.mod. Run "go generate" here after changing ../../openapi.json, and
// commit client.gen.go with it: CI fails when the two disagree.
//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../openapi.json
