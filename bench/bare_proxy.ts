/**
 * The floor for any gateway on this runtime: Deno.serve plus fetch to one backend, nothing else.
 * `deno run -A bench/bare_proxy.ts PORT TARGET_URL`. Prints `READY <port>`.
 */
const [portArg = "0", target = "http://127.0.0.1:8000"] = Deno.args;

const server = Deno.serve(
  { hostname: "127.0.0.1", port: Number(portArg), onListen() {} },
  async (request) => {
    const url = new URL(request.url);
    const upstream = await fetch(target + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
  },
);
console.log(`READY ${(server.addr as Deno.NetAddr).port}`);
