/**
 * The node-redis Pub/Sub calls the subscriber makes, in one place: node-redis v4 keeps these on
 * its client but does not export their types, so the casts they need live here only.
 *
 * - Memory: node-redis' `subscribe` keeps a per-channel `{buffers: Set, strings: Set}` entry (~350
 *   bytes a channel). `attach` makes ONE such entry per connection, whose single listener is the
 *   subscriber's dispatch, and `subscribe` registers a whole chunk of channels with it through
 *   `extendPubSubListeners` (one SUBSCRIBE, only for channels node-redis does not know yet, never an
 *   empty one). `unsubscribe` is the listener-less form: node-redis' listener-based `unsubscribe`
 *   would mutate the shared entry.
 * - Loss: node-redis does not emit `end` for a connection killed under a `reconnectStrategy: false`
 *   client, only `error` (with `isReady` already false), so both are watched.
 *
 * @internal
 */
import type { NodeRedis } from "../RedisConnection.js"
import { destroy } from "../RedisConnection.js"

type PubSubType = Parameters<NodeRedis["getPubSubListeners"]>[0]
type ChannelListeners = NonNullable<
  ReturnType<NodeRedis["getPubSubListeners"]> extends Map<string, infer L> ? L : never
>

// node-redis' `PubSubType.CHANNELS` (the enum is not exported by the package root).
const CHANNELS = "CHANNELS" as PubSubType

/** What node-redis holds as subscribed on a connection (acknowledged or on the way). */
export interface Subscribed {
  readonly size: number
  readonly has: (channel: string) => boolean
}

/** A dedicated connection in subscriber mode, with the subscriber's listeners attached. */
export interface PubSub {
  /** Connected and not lost: commands can be sent. */
  readonly isReady: () => boolean
  readonly subscribed: () => Subscribed
  /** SUBSCRIBE the channels not yet subscribed; resolves on the acknowledgement. */
  readonly subscribe: (channels: ReadonlyArray<string>) => Promise<void>
  /** UNSUBSCRIBE now; resolves on the acknowledgement. */
  readonly unsubscribe: (channels: ReadonlyArray<string>) => Promise<void>
  readonly ping: () => Promise<string>
  /** Close the socket now (pending commands fail). Never throws. */
  readonly destroy: () => void
  /** Remove the listeners `attach` added (the client is being closed). */
  readonly detach: () => void
}

/**
 * Attach to a connected client: every message on a channel it subscribes goes to `onMessage`, and
 * `onLoss` is called whenever an `error` or `end` leaves it not ready (maybe more than once).
 */
export const attach = (
  client: NodeRedis,
  onMessage: (message: string, channel: string) => void,
  onLoss: () => void
): PubSub => {
  const listeners: ChannelListeners = { unsubscribing: false, buffers: new Set(), strings: new Set([onMessage]) }
  const lost = () => {
    if (!client.isReady) onLoss()
  }
  client.on("error", lost)
  client.on("end", lost)
  return {
    isReady: () => client.isReady,
    subscribed: () => client.getPubSubListeners(CHANNELS),
    subscribe: (channels) => {
      const batch = new Map<string, ChannelListeners>()
      for (const channel of channels) batch.set(channel, listeners)
      return client.extendPubSubListeners(CHANNELS, batch)
    },
    unsubscribe: (channels) => client.unsubscribe(channels as Array<string>),
    ping: () => client.ping(),
    destroy: () => destroy(client),
    detach: () => {
      client.off("error", lost)
      client.off("end", lost)
    }
  }
}
