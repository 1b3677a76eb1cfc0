"""KServe v2: tensors in their REST, binary and gRPC forms, and the GRPCInferenceService table."""
