/**
 * A loopback TCP proxy in front of a test server, for network faults a killed process cannot
 * make: `blackhole` silently stops forwarding the chosen connections in both directions without
 * closing them (a half-open socket behind a load balancer: no FIN, no RST, no data). Bytes are
 * read and dropped, so neither peer sees back-pressure either. New connections are forwarded.
 */
import * as Net from "node:net"
import type { Scope } from "effect"
import { Effect } from "effect"
import { HarnessError } from "./RedisServer.js"

export interface ProxiedConnection {
  /** Order of arrival, from 0. */
  readonly id: number
  /** What the client has sent so far (first 64 kB), to tell connections apart (e.g. SUBSCRIBE). */
  readonly sent: () => string
  readonly blackholed: () => boolean
}

export interface TcpProxy {
  readonly host: "127.0.0.1"
  readonly port: number
  readonly connections: () => ReadonlyArray<ProxiedConnection>
  /** Stop forwarding, silently, on every open connection `which` selects; returns how many. */
  readonly blackhole: (which: (connection: ProxiedConnection) => boolean) => number
}

const SENT_KEPT = 64 * 1024

/** A proxy on a free loopback port forwarding to `target`; closed (all sockets destroyed) with the scope. */
export const tcpProxy = (target: {
  readonly host: string
  readonly port: number
}): Effect.Effect<TcpProxy, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const sockets = new Set<Net.Socket>()
    const connections: Array<ProxiedConnection & { holed: boolean; open: boolean }> = []
    const server = Net.createServer((client) => {
      const upstream = Net.connect(target.port, target.host)
      sockets.add(client)
      sockets.add(upstream)
      let sent = ""
      const connection = {
        id: connections.length,
        sent: () => sent,
        blackholed: () => connection.holed,
        holed: false,
        open: true
      }
      connections.push(connection)
      client.on("data", (chunk: Buffer) => {
        if (sent.length < SENT_KEPT) sent += chunk.toString("latin1")
        if (!connection.holed) upstream.write(chunk)
      })
      upstream.on("data", (chunk: Buffer) => {
        if (!connection.holed) client.write(chunk)
      })
      const close = () => {
        connection.open = false
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      client.on("error", close)
      upstream.on("error", close)
      // A blackholed connection keeps both sockets open whatever a peer does: it is silent.
      client.on("close", () => {
        if (!connection.holed) close()
      })
      upstream.on("close", () => {
        if (!connection.holed) close()
      })
    })
    const port = yield* Effect.async<number, HarnessError>((resume) => {
      server.on("error", (cause) => resume(Effect.fail(new HarnessError({ message: "tcpProxy listen", cause }))))
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
    )
    return {
      host: "127.0.0.1",
      port,
      connections: () => connections,
      blackhole: (which) => {
        let n = 0
        for (const connection of connections) {
          if (connection.open && !connection.holed && which(connection)) {
            connection.holed = true
            n++
          }
        }
        return n
      }
    } as const
  })
