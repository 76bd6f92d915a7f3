"""The gateway's own HTTP/1.1 on httptools, loopback only: the server it answers on
(`server.py`, plus `serve_asgi` for in-process use), the keep-alive client it forwards with
(`client.py`), and SageMaker's event-stream framing of streamed answers (`eventstream.py`).

Measured necessary: uvicorn's ASGI cycle and httpx each cost several times a bare asyncio
protocol per request, which is most of the gateway's overhead (numbers in each module). ASGI
types come from `endpointkit.serving.types`, as everywhere else.
"""
