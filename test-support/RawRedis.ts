/**
 * A plain node-redis connection of a test's own (a "worker" writing like Celery, an admin issuing
 * CLIENT KILL / CONFIG), independent of the library under test. It never reconnects, so a test
 * that kills the server sees it fail instead of silently coming back; closed with the scope.
 */
import type { Scope } from "effect"
import { Effect } from "effect"
import { createClient } from "redis"

export type RawClient = ReturnType<typeof createClient>

export const rawClient = (server: {
  readonly host: string
  readonly port: number
}): Effect.Effect<RawClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient({ socket: { host: server.host, port: server.port, reconnectStrategy: false } })
      // Errors surface on the commands; an unhandled `error` event would crash the test run.
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => (c.isOpen ? c.disconnect() : Promise.resolve()))
  )
