/**
 * What a connection announces on connect: `CLIENT SETINFO LIB-NAME node-redis(effect-celery_v…)`
 * and `LIB-VER`, pipelined with CLIENT SETNAME in the connect's write, and an older server's error
 * reply to SETINFO (the redis-server here is 7.0) neither failing the connect nor logging a line.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { RedisClient } from "@effect-celery/redis"
import { CLIENT_INFO_TAG, LIB_VERSION } from "@effect-celery/redis/RedisConnection"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { tcpProxy } from "../../../test-support/TcpProxy.js"
import { build, capturingLogs } from "./Expect.js"

const packageVersion = (
  JSON.parse(Fs.readFileSync(Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../package.json"), "utf8")) as {
    readonly version: string
  }
).version

/** `[major, minor]` of `INFO server`'s redis_version. */
const serverVersion = (info: string): readonly [number, number] => {
  const [major, minor] = (/redis_version:(\d+)\.(\d+)/.exec(info) ?? []).slice(1).map(Number)
  return [major ?? 0, minor ?? 0]
}

describe("CLIENT SETINFO on connect", () => {
  it.effect("the announced version is the package's", () =>
    Effect.sync(() => {
      assert.strictEqual(LIB_VERSION, packageVersion)
      assert.strictEqual(CLIENT_INFO_TAG, `effect-celery_v${packageVersion}`)
    })
  )

  it.scopedLive("sent with CLIENT SETNAME in the connect's write; an older server's error reply is silent", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const proxy = yield* tcpProxy(server)
      const logs = yield* capturingLogs("SETINFO")
      const client = yield* build(
        RedisClient.layer({ host: proxy.host, port: proxy.port, clientName: "ci-name" })
      ).pipe(Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.All))
      assert.strictEqual(
        yield* client
          .command(["SET", "ci-k", "v"])
          .pipe(Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.All)),
        "OK"
      )

      // One connection, whose handshake names this library and precedes the first command.
      const [conn, ...others] = proxy.connections()
      assert.isDefined(conn)
      assert.lengthOf(others, 0)
      const sent = conn.sent()
      const setinfo = sent.indexOf(
        `LIB-NAME\r\n$${`node-redis(${CLIENT_INFO_TAG})`.length}\r\nnode-redis(${CLIENT_INFO_TAG})\r\n`
      )
      assert.isAtLeast(setinfo, 0, `no LIB-NAME in ${JSON.stringify(sent)}`)
      assert.include(sent, "LIB-VER")
      assert.include(sent, "SETNAME\r\n$7\r\nci-name")
      assert.isBelow(setinfo, sent.indexOf("PING"))
      assert.isBelow(sent.indexOf("SETNAME"), sent.indexOf("PING"))

      const admin = yield* rawClient(server)
      const list = yield* Effect.promise(() => admin.sendCommand<string>(["CLIENT", "LIST"]))
      const line = list.split("\n").find((l) => l.includes(" name=ci-name "))
      assert.isDefined(line, list)
      const [major, minor] = serverVersion(yield* Effect.promise(() => admin.info("server")))
      // 7.2 lists what SETINFO set; an older server rejected it (the proxy saw it sent) and the
      // connect went on all the same.
      if (major > 7 || (major === 7 && minor >= 2)) assert.include(line, `lib-name=node-redis(${CLIENT_INFO_TAG})`)
      assert.deepStrictEqual(
        logs.messages.filter((m) => /setinfo|subcommand/i.test(m)),
        []
      )
    })
  )
})
