# syntax=docker/dockerfile:1
# kbql container image.
#   docker build -t kbql .
#   docker run -p 4000:4000 -v kbql-data:/data -e KBQL_AUTH_MODE=jwt -e KBQL_JWT_SECRET=... kbql
#
# Node 22 (maintenance LTS until April 2027): Node 20 reached end of life in April 2026. package.json allows
# >=20.17 and every pinned dependency supports 22; the dev machines and CI run 20, so the deploy workflow's image
# job is what exercises 22. better-sqlite3 is compiled for the image's Node below.
ARG NODE_IMAGE=node:22-bookworm-slim

# Production dependencies only, with the native SQLite addon compiled from source (no prebuilt download).
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Compile TypeScript (src/ only) with the dev dependencies.
FROM deps AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY deploy/tsconfig.image.json ./deploy/tsconfig.image.json
COPY src ./src
RUN npx tsc -p deploy/tsconfig.image.json

# Runtime: compiled output and production dependencies, no compiler, run as the unprivileged `node` user (uid 1000).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    KBQL_DATA_DIR=/data
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src ./dist/src
COPY --chown=root:root package.json ./
# The only writable place: the embedded store's directory (a volume). The code itself stays root-owned, read-only.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 4000: the API; 9464: /metrics (KBQL_METRICS_PORT, its default with NODE_ENV=production).
EXPOSE 4000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form, no shell and no npm in between: node is PID 1 and receives SIGTERM itself (src/main.ts drains in-flight
# requests, closes the store and exits 0). Kubernetes' terminationGracePeriodSeconds must exceed its 15 s deadline.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
