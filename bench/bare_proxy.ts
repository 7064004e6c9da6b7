/**
 * The floor for any gateway on this runtime: Deno.serve plus fetch to one backend, nothing else.
 * `deno run -A bench/bare_proxy.ts PORT TARGET_URL [transform|json]`. Prints `READY <port>`. With
 * `transform`, responses pass through an identity TransformStream: the cost of touching a stream
 * in JavaScript at all, which any metering gateway pays. With `json`, the request body is parsed
 * and serialised again before it is forwarded: what any gateway that reads `model` must do.
 */
const [portArg = "0", target = "http://127.0.0.1:8000", mode = ""] = Deno.args;

const server = Deno.serve(
  { hostname: "127.0.0.1", port: Number(portArg), onListen() {} },
  async (request) => {
    const url = new URL(request.url);
    const body = mode === "json" && request.body
      ? JSON.stringify(JSON.parse(await request.text()))
      : request.body;
    const upstream = await fetch(target + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      body,
    });
    const answer = mode === "transform" && upstream.body
      ? upstream.body.pipeThrough(new TransformStream())
      : upstream.body;
    return new Response(answer, { status: upstream.status, headers: upstream.headers });
  },
);
console.log(`READY ${(server.addr as Deno.NetAddr).port}`);
