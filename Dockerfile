# The tunnel-lab worker as an image (see docker-compose.yml and docs/stack.md): built with the dev
# dependencies, run with the production ones only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
# Local tools that actions call (certs.generate runs openssl; playbooks' exec steps often use curl and ssh).
# vagrant and kubectl are not in the image: lab steps need a worker on the lab host, which has them.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl openssh-client openssl \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
  TEMPORAL_ADDRESS=temporal:7233 \
  TEMPORAL_NAMESPACE=default \
  TEMPORAL_TASK_QUEUE=tunnel-lab \
  TUNNEL_LAB_STATE=/var/lib/tunnel-lab
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read at run time: playbooks by name, lab definitions and the assets lab actions copy to the machines.
COPY playbooks ./playbooks
COPY labs ./labs
COPY envoy ./envoy
COPY vagrant ./vagrant
RUN mkdir -p /var/lib/tunnel-lab && chown node:node /var/lib/tunnel-lab
USER node
VOLUME ["/var/lib/tunnel-lab"]
CMD ["node", "dist/src/worker/main.js"]
