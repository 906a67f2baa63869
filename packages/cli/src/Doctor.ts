/**
 * `effect-celery doctor`: what the URL resolves to (parsed exactly as Celery does, password masked),
 * whether the server answers, what it is (version, mode, role), the TLS peer it presented, and the
 * Pub/Sub subscriptions left on task channels (subscribers to results that are already ready:
 * clients that never unsubscribed, which cost the server memory on every PUBLISH).
 */
import * as Command from "@effect/cli/Command"
import * as RedisConfig from "@effect-celery/redis/RedisConfig"
import * as Meta from "@effect-celery/core/Meta"
import * as TaskState from "@effect-celery/core/TaskState"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Tls from "node:tls"
import * as Admin from "./Admin.js"
import * as Connection from "./Connection.js"
import * as ExitCode from "./ExitCode.js"
import * as Render from "./Render.js"
import { json } from "./ResultCommands.js"
import { fail, withBackend } from "./Run.js"

/** What the server presented in the TLS handshake. */
interface TlsPeer {
  readonly subject: string
  readonly issuer: string
  readonly validTo: string
  readonly protocol: string
  readonly authorized: boolean
  readonly error: string | undefined
}

/** A separate TLS handshake with the data node's TLS options, to read its certificate (bounded). */
const tlsPeer = (config: RedisConfig.RedisConfig, tls: RedisConfig.TlsConfig) =>
  Effect.flatMap(
    Effect.mapError(RedisConfig.tlsOptions(tls), (e) => e.message),
    (options) =>
      Effect.async<TlsPeer, string>((resume) => {
        const socket = Tls.connect({
          ...options,
          host: config.host ?? "localhost",
          port: config.port ?? 6379,
          // Observe only: the real connection already enforced (or not) the verification.
          rejectUnauthorized: false
        })
        socket.once("secureConnect", () => {
          const cert = socket.getPeerCertificate()
          const name = (o: unknown) =>
            typeof o === "object" && o !== null && "CN" in o
              ? `CN=${String((o as Record<string, unknown>)["CN"])}`
              : "?"
          resume(
            Effect.succeed({
              subject: name(cert.subject),
              issuer: name(cert.issuer),
              validTo: cert.valid_to,
              protocol: socket.getProtocol() ?? "?",
              authorized: socket.authorized,
              error: socket.authorizationError === null ? undefined : String(socket.authorizationError)
            })
          )
          socket.end()
        })
        socket.once("error", (e: Error) => resume(Effect.fail(e.message)))
        return Effect.sync(() => socket.destroy())
      }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "TLS handshake timed out" }))
  )

export const command = Command.make("doctor", { ...Connection.options, json }, (args) =>
  Effect.gen(function* () {
    const resolved = yield* Effect.either(Connection.resolve(args))
    if (Either.isLeft(resolved)) return yield* fail(resolved.left, { uri: yield* Connection.displayUri(args) })
    const r = resolved.right
    const how =
      r.kind === "sentinel"
        ? `sentinel (master ${r.masterName ?? "?"}) via ${r.target}`
        : r.config?.path !== undefined
          ? `redis over unix socket ${r.target}`
          : `redis${r.tls !== undefined ? " over TLS" : ""} at ${r.target}`
    const tlsText =
      r.tls === undefined
        ? "off"
        : [
            `ssl_cert_reqs=${r.tls.certReqs ?? "required"}`,
            r.tls.caFile !== undefined ? `ssl_ca_certs=${r.tls.caFile}` : "",
            r.tls.certFile !== undefined ? `ssl_certfile=${r.tls.certFile}` : "",
            r.tls.checkHostname === true ? "ssl_check_hostname=true" : ""
          ]
            .filter((s) => s !== "")
            .join(" ")
    if (!args.json) {
      yield* Console.log(
        [
          `url:         ${r.uri}`,
          `connection:  ${how}`,
          `db:          ${r.db}`,
          `username:    ${r.username ?? "(none)"}`,
          `password:    ${r.passwordSet ? "set (not shown)" : "(none)"}`,
          `tls:         ${tlsText}`,
          `keys:        ${r.keys.task("<task_id>")}, ${r.keys.group("<group_id>")}`
        ].join("\n")
      )
    }
    yield* withBackend(args, () =>
      Effect.gen(function* () {
        const t0 = yield* Clock.currentTimeMillis
        const [server, replication, cluster] = yield* Effect.all([
          Admin.info("server"),
          Admin.info("replication"),
          Admin.info("cluster")
        ])
        const rtt = (yield* Clock.currentTimeMillis) - t0
        const peer =
          r.tls !== undefined && r.config !== undefined && r.config.path === undefined
            ? yield* Effect.either(tlsPeer(r.config, r.tls))
            : undefined
        const channels = yield* Admin.pubsubChannels(Admin.prefixPattern(r.keys.taskKeyprefix))
        const counts = yield* Admin.pubsubNumsub(channels)
        const values = yield* Admin.mget(channels)
        const subs = channels.map((channel, i) => {
          const id = channel.slice(r.keys.taskKeyprefix.length)
          const raw = values[i] ?? null
          const state =
            raw === null
              ? "PENDING"
              : Either.match(Meta.decodeTaskMeta(id, raw), { onLeft: () => "UNDECODABLE", onRight: (m) => m.status })
          return { channel, subscribers: counts.get(channel) ?? 0, state, leftover: TaskState.isReady(state) }
        })
        const leftovers = subs.filter((s) => s.leftover)
        const version = server.get("redis_version") ?? "?"
        const mode = server.get("redis_mode") ?? "?"
        const clusterEnabled = cluster.get("cluster_enabled") === "1"
        const role = replication.get("role") ?? "?"
        if (args.json) {
          yield* Console.log(
            Render.jsonObject([
              ["url", JSON.stringify(r.uri)],
              ["kind", JSON.stringify(r.kind)],
              ["target", JSON.stringify(r.target)],
              ["db", String(r.db)],
              ["username", JSON.stringify(r.username ?? null)],
              ["password_set", String(r.passwordSet)],
              ["tls", r.tls === undefined ? "null" : JSON.stringify({ ssl_cert_reqs: r.tls.certReqs ?? "required" })],
              ["connected", "true"],
              ["server", JSON.stringify({ version, mode, role, cluster_enabled: clusterEnabled })],
              [
                "tls_peer",
                peer === undefined
                  ? "null"
                  : Either.isLeft(peer)
                    ? JSON.stringify({ error: peer.left })
                    : JSON.stringify(peer.right)
              ],
              ["subscriptions", JSON.stringify(subs)],
              ["leftover_subscriptions", String(leftovers.length)]
            ])
          )
        } else {
          const lines = [
            `connected:   yes (INFO in ${rtt} ms)`,
            `server:      redis ${version}, mode ${mode}, role ${role}, cluster ${clusterEnabled ? "enabled" : "disabled"}`
          ]
          if (peer !== undefined) {
            lines.push(
              Either.match(peer, {
                onLeft: (e) => `tls peer:    handshake failed: ${e}`,
                onRight: (p) =>
                  `tls peer:    ${p.subject}, issued by ${p.issuer}, valid to ${p.validTo}, ${p.protocol}, ${p.authorized ? "verified" : `not verified (${p.error ?? "?"})`}`
              })
            )
          }
          lines.push(
            `pubsub:      ${subs.length} task channel${subs.length === 1 ? "" : "s"} subscribed, ${leftovers.length} on ready results (leftover)`
          )
          for (const s of subs) {
            lines.push(
              `  ${s.channel}  ${s.subscribers} subscriber${s.subscribers === 1 ? "" : "s"}  ${s.state}${s.leftover ? "  leftover" : ""}`
            )
          }
          yield* Console.log(lines.join("\n"))
        }
        return ExitCode.OK
      })
    )
  })
).pipe(
  Command.withDescription(
    "Check the configuration: the URL as Celery parses it (password masked), connect, server version/mode/role, TLS peer, leftover Pub/Sub subscriptions on task channels."
  )
)
