# ModelGate as a container: the same program `deno task start` runs, with dependencies cached at
# build time so the container starts without network access.
FROM denoland/deno:2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
COPY main.ts ./
COPY src ./src
COPY adapters ./adapters
COPY admin ./admin
COPY configs ./configs
RUN deno task bundle && deno cache main.ts

# Data (the KV file) lives in a volume; the config can be replaced by mounting /app/configs.
RUN mkdir -p /app/data && chown -R deno:deno /app/data
VOLUME ["/app/data"]
USER deno
EXPOSE 8080
# Raise the descriptor limit at run time (a Dockerfile cannot): `docker run --ulimit
# nofile=65536:65536 ...`, or `ulimits` in docker-compose.yml. Running out is survived, not fatal.
ENV MODELGATE_KV=/app/data/modelgate.kv
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch('http://127.0.0.1:8080/healthz'); Deno.exit(r.ok ? 0 : 1)"]
ENTRYPOINT ["deno", "run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "main.ts"]
CMD ["serve", "--config", "configs/config.yaml"]
