/**
 * Test harness: a private Sentinel topology on loopback (1 master + 1 replica + N sentinels),
 * owned by a Scope. Readiness is log lines (server ready, replica sync finished, `+monitor`) and
 * then the sentinels' own `SENTINEL` replies (every sentinel sees the others and the replica),
 * polled at a short interval: a readiness condition, never a fixed sleep.
 *
 * Options: a password on the data nodes (`requirepass`/`masterauth` + `sentinel auth-pass`), a
 * password on the sentinels (`requirepass` + `sentinel sentinel-pass`), and TLS everywhere
 * (`tls-port`, `tls-replication yes` on the replica and the sentinels).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Scope } from "effect"
import { Duration, Effect, Either } from "effect"
import { createClient } from "redis"
import type { RedisServer, ServerProcess, TlsFiles } from "./RedisServer.js"
import { freePort, HarnessError, redisServer, spawn, tempDir } from "./RedisServer.js"

export interface SentinelTopologyOptions {
  /** The monitored service name (default "mymaster"). */
  readonly masterName?: string
  /** `requirepass`/`masterauth` on the data nodes (and `sentinel auth-pass` for the sentinels). */
  readonly password?: string
  /** `requirepass` on the sentinels (and `sentinel sentinel-pass` between them). */
  readonly sentinelPassword?: string
  /** Serve everything over TLS only (data nodes, replication, sentinels). */
  readonly tls?: TlsFiles
  /** Default 3. */
  readonly sentinels?: number
  /** Default 2. */
  readonly quorum?: number
  /** `down-after-milliseconds` (default 1000). */
  readonly downAfterMillis?: number
  /** `failover-timeout` (default 3000). */
  readonly failoverTimeoutMillis?: number
}

export interface SentinelNode {
  readonly host: "127.0.0.1"
  readonly port: number
  readonly dir: string
  readonly process: ServerProcess
}

export interface Address {
  readonly host: string
  readonly port: number
}

export interface SentinelTopology {
  readonly masterName: string
  /** The data nodes: index 0 is the initial master, index 1 the initial replica. */
  readonly nodes: ReadonlyArray<RedisServer>
  readonly sentinels: ReadonlyArray<SentinelNode>
  /** The certificates everything serves with (when TLS). */
  readonly tls: TlsFiles | undefined
  /** `sentinel://127.0.0.1:p1;sentinel://127.0.0.1:p2;…` (no credentials, db 0). */
  readonly url: string
  /** The data node listening on `port`. */
  readonly nodeAt: (port: number) => RedisServer | undefined
  /** Run a command on sentinel `index` over a short-lived connection. */
  readonly sentinelCommand: (index: number, args: ReadonlyArray<string>) => Effect.Effect<unknown, HarnessError>
  /** Run a command on a data node over a short-lived connection. */
  readonly nodeCommand: (port: number, args: ReadonlyArray<string>) => Effect.Effect<unknown, HarnessError>
  /** The master address as the first live sentinel reports it. */
  readonly masterAddress: Effect.Effect<Address, HarnessError>
  /**
   * Wait until every live sentinel reports a master other than `oldPort`, and that node's ROLE is
   * master (a promoted replica). Returns the new master's address.
   */
  readonly waitForNewMaster: (oldPort: number, timeoutMillis?: number) => Effect.Effect<Address, HarnessError>
  /** Wait until every live sentinel sees the others and at least one healthy replica. */
  readonly waitUntilSettled: (timeoutMillis?: number) => Effect.Effect<void, HarnessError>
}

const tlsClientOptions = (tls: TlsFiles) => ({
  tls: true as const,
  ca: Fs.readFileSync(tls.ca),
  cert: Fs.readFileSync(tls.clientCert),
  key: Fs.readFileSync(tls.clientKey),
  checkServerIdentity: () => undefined
})

/** One command over a fresh connection, closed afterwards; bounded by a timeout. */
export const command = (
  address: Address,
  args: ReadonlyArray<string>,
  options: { readonly password?: string | undefined; readonly tls?: TlsFiles | undefined } = {}
): Effect.Effect<unknown, HarnessError> =>
  Effect.tryPromise({
    try: async () => {
      const client = createClient({
        socket: {
          host: address.host,
          port: address.port,
          connectTimeout: 2000,
          reconnectStrategy: false,
          ...(options.tls ? tlsClientOptions(options.tls) : {})
        },
        ...(options.password !== undefined ? { password: options.password } : {}),
        disableClientInfo: true
      })
      client.on("error", () => {})
      try {
        await client.connect()
        return await client.sendCommand([...args])
      } finally {
        if (client.isOpen) await client.disconnect().catch(() => {})
      }
    },
    catch: (cause) =>
      new HarnessError({ message: `${address.host}:${address.port} ${args.join(" ")}: ${String(cause)}`, cause })
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.seconds(5),
      onTimeout: () => new HarnessError({ message: `${address.host}:${address.port} ${args.join(" ")}: timed out` })
    })
  )

/** A flat `[k1, v1, k2, v2, …]` reply as a record. */
export const pairs = (reply: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  return out
}

/** Re-check a readiness condition every 100 ms until it holds (live clock only). */
const poll = <A>(what: string, timeoutMillis: number, check: Effect.Effect<A | undefined, HarnessError>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    let last = ""
    while (true) {
      const result = yield* Effect.either(check)
      if (Either.isRight(result) && result.right !== undefined) return result.right
      if (Either.isLeft(result)) last = result.left.message
      if (Date.now() > deadline) {
        return yield* Effect.fail(
          new HarnessError({ message: `${what}: not reached within ${timeoutMillis} ms ${last}` })
        )
      }
      yield* Effect.sleep(Duration.millis(100))
    }
  })

export const sentinelTopology = (
  options: SentinelTopologyOptions = {}
): Effect.Effect<SentinelTopology, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const masterName = options.masterName ?? "mymaster"
    const tls = options.tls
    const count = options.sentinels ?? 3
    const quorum = options.quorum ?? 2
    // No 5 s wait before the (diskless) full sync, neither now nor after a failover.
    const syncArgs = ["--repl-diskless-sync-delay", "0"]
    const passwordArgs =
      options.password !== undefined ? ["--requirepass", options.password, "--masterauth", options.password] : []
    // The replica (and, after a failover, the demoted master) replicates over TLS with the client certificate.
    const replicationArgs = tls
      ? ["--tls-replication", "yes", "--tls-client-cert-file", tls.clientCert, "--tls-client-key-file", tls.clientKey]
      : []

    const serverTls = tls ? { cert: tls.serverCert, key: tls.serverKey, ca: tls.ca } : undefined
    const master = yield* redisServer({
      args: [...syncArgs, ...passwordArgs, ...replicationArgs],
      ...(serverTls ? { tls: serverTls } : {})
    })
    const replica = yield* redisServer({
      args: [...syncArgs, ...passwordArgs, ...replicationArgs, "--replicaof", "127.0.0.1", String(master.port)],
      ...(serverTls ? { tls: serverTls } : {})
    })
    yield* replica.process.waitForLine("MASTER <-> REPLICA sync: Finished with success")
    const nodes = [master, replica]

    const sentinels: Array<SentinelNode> = []
    for (let i = 0; i < count; i++) {
      const dir = yield* tempDir("sentinel-")
      const port = yield* freePort
      const conf = [
        "bind 127.0.0.1",
        "protected-mode no",
        `dir ${dir}`,
        'logfile ""',
        ...(tls
          ? [
              "port 0",
              `tls-port ${port}`,
              ...[
                `tls-cert-file ${tls.serverCert}`,
                `tls-key-file ${tls.serverKey}`,
                `tls-ca-cert-file ${tls.ca}`,
                `tls-client-cert-file ${tls.clientCert}`,
                `tls-client-key-file ${tls.clientKey}`,
                "tls-auth-clients no",
                "tls-replication yes"
              ]
            ]
          : [`port ${port}`]),
        ...(options.sentinelPassword !== undefined
          ? [`requirepass ${options.sentinelPassword}`, `sentinel sentinel-pass ${options.sentinelPassword}`]
          : []),
        `sentinel monitor ${masterName} 127.0.0.1 ${master.port} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} ${options.downAfterMillis ?? 1000}`,
        `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMillis ?? 3000}`,
        `sentinel parallel-syncs ${masterName} 1`,
        ...(options.password !== undefined ? [`sentinel auth-pass ${masterName} ${options.password}`] : [])
      ]
      const confPath = Path.join(dir, "sentinel.conf")
      Fs.writeFileSync(confPath, conf.join("\n") + "\n")
      const process = yield* spawn({
        command: "redis-server",
        args: [confPath, "--sentinel"],
        readyLine: `+monitor master ${masterName}`,
        name: `redis-sentinel:${port}`
      })
      sentinels.push({ host: "127.0.0.1", port, dir, process })
    }

    const sentinelOptions = { password: options.sentinelPassword, tls }
    const nodeOptions = { password: options.password, tls }
    const sentinelCommand = (index: number, args: ReadonlyArray<string>) => {
      const s = sentinels[index]
      return s === undefined
        ? Effect.fail(new HarnessError({ message: `no sentinel ${index}` }))
        : command(s, args, sentinelOptions)
    }
    const nodeCommand = (port: number, args: ReadonlyArray<string>) =>
      command({ host: "127.0.0.1", port }, args, nodeOptions)
    const live = () => sentinels.map((s, i) => [s, i] as const).filter(([s]) => s.process.isRunning())

    const masterOf = (index: number) =>
      sentinelCommand(index, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName]).pipe(
        Effect.flatMap((reply) =>
          Array.isArray(reply) && reply.length === 2
            ? Effect.succeed({ host: String(reply[0]), port: Number(reply[1]) })
            : Effect.fail(new HarnessError({ message: `no master address in ${JSON.stringify(reply)}` }))
        )
      )

    const masterAddress = Effect.suspend(() => {
      const candidates = live().map(([, i]) => masterOf(i))
      return candidates.length === 0
        ? Effect.fail(new HarnessError({ message: "no live sentinel" }))
        : Effect.firstSuccessOf(candidates)
    })

    const settled = Effect.gen(function* () {
      for (const [, i] of live()) {
        const m = pairs(yield* sentinelCommand(i, ["SENTINEL", "MASTER", masterName]))
        if (
          m["flags"] !== "master" ||
          Number(m["num-other-sentinels"]) < live().length - 1 ||
          Number(m["num-slaves"]) < 1
        ) {
          return undefined
        }
        const replicas = yield* sentinelCommand(i, ["SENTINEL", "REPLICAS", masterName])
        if (
          !Array.isArray(replicas) ||
          !replicas.some((r) => {
            const p = pairs(r)
            return p["flags"] === "slave" && p["master-link-status"] === "ok"
          })
        )
          return undefined
      }
      return true
    })
    const waitUntilSettled = (timeoutMillis = 20_000) =>
      poll("sentinel topology settled", timeoutMillis, settled).pipe(Effect.asVoid)
    yield* waitUntilSettled()

    const waitForNewMaster = (oldPort: number, timeoutMillis = 20_000) =>
      poll(
        `failover away from ${oldPort}`,
        timeoutMillis,
        Effect.gen(function* () {
          let agreed: Address | undefined
          for (const [, i] of live()) {
            const a = yield* masterOf(i)
            if (a.port === oldPort || (agreed !== undefined && agreed.port !== a.port)) return undefined
            agreed = a
          }
          if (agreed === undefined) return undefined
          const role = yield* nodeCommand(agreed.port, ["ROLE"])
          return Array.isArray(role) && role[0] === "master" ? agreed : undefined
        })
      )

    return {
      masterName,
      nodes,
      sentinels,
      tls,
      url: sentinels.map((s) => `sentinel://127.0.0.1:${s.port}`).join(";"),
      nodeAt: (port) => nodes.find((n) => n.port === port),
      sentinelCommand,
      nodeCommand,
      masterAddress,
      waitForNewMaster,
      waitUntilSettled
    } satisfies SentinelTopology
  })
