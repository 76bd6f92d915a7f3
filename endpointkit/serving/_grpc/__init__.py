"""Generated protobuf code for OIP v2 over gRPC (see ``generate.py``); imported only when
``ENDPOINTKIT_GRPC_PORT`` is set."""
