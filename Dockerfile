# syntax=docker/dockerfile:1
# imaging-db-mtls-operator image:  docker build -t imaging-db-mtls-operator:0.1.0 .
# Two stages: build (TypeScript, then esbuild bundles the operator into one file: dist/main.js), then a distroless
# Node 24 runtime holding that file alone, no node_modules, that runs as 65532:65532 with no shell or package manager
# (deploy/operator/deployment.yaml runs it read-only).

# 1. Build: every dependency, then npm run build (tsc -p tsconfig.build.json, then scripts/bundle-operator.ts).
#    --ignore-scripts: the only install scripts are the `node` devDependency's (it fetches a Node binary the image
#    already has) and esbuild's (an optional check: its binary comes in its platform package, @esbuild/linux-*).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle-operator.ts ./scripts/
RUN npm run build

# 2. Runtime: the bundle only (test/integration/install.test.ts runs it from a directory with no node_modules).
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/dist/main.js ./dist/main.js
USER 65532:65532
# /healthz, /readyz, /metrics (--health-port)
EXPOSE 8080
# V8 flags chosen by measurement (npm run bench -- scale): scripts/bundle-operator.ts (IMAGE_NODE_FLAGS) says what
# each buys; a unit test keeps this line equal to it.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "--heap-growing-percent=50", "dist/main.js"]
