/**
 * Everything wired: a `RedisClient`, the backend and the Pub/Sub consumer over it, from a Celery
 * `result_backend` URL, a config object, or the environment. The pieces stay available separately
 * (`RedisClient`, `RedisResultBackend`, `RedisResultConsumer`) for other wirings (e.g. Sentinel).
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import type { ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import type { ResultBackend } from "@effect-celery/core/ResultBackend"
import type { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as RedisClient from "./RedisClient.js"
import type * as RedisConfig from "./RedisConfig.js"
import * as RedisResultBackend from "./RedisResultBackend.js"
import * as RedisResultConsumer from "./RedisResultConsumer.js"
import type * as RedisUrl from "./RedisUrl.js"

export type Services = ResultBackend | ResultConsumer | RedisClient.RedisClient

export interface Options extends BackendOptions {
  /** Celery's `redis_*` settings that are not in the URL (`redis_backend_use_ssl`, timeouts, …). */
  readonly connection?: RedisUrl.UrlOptions | undefined
}

/** The backend and the consumer over a given client layer, whose other services stay provided (e.g. Sentinel's). */
export const layerWithClient = <A, E, R>(
  client: Layer.Layer<RedisClient.RedisClient | A, E, R>,
  options: BackendOptions = {}
): Layer.Layer<Services | A, E | ImproperlyConfigured, R> =>
  RedisResultBackend.layer(options).pipe(
    Layer.provideMerge(RedisResultConsumer.layer(options)),
    Layer.provideMerge(client)
  )

/** From a Celery `result_backend` URL: `redis://`, `rediss://…?ssl_cert_reqs=…`, `redis+socket:///path`. */
export const layerUrl = (
  url: string | Redacted.Redacted,
  options: Options = {}
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured> =>
  layerWithClient(RedisClient.layerUrl(url, options.connection ?? {}), options)

/** From a connection config object (host/port or unix path, db, ACL, TLS, timeouts). */
export const layer = (
  config: RedisConfig.RedisConfig,
  options: BackendOptions = {}
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured> => layerWithClient(RedisClient.layer(config), options)

/**
 * Everything `layerConfig` reads: the URL, Celery's `redis_*` connection settings and the backend
 * options.
 */
export interface LayerConfig extends BackendOptions {
  /** `result_backend`: the Celery URL (`redis://`, `rediss://`, `redis+socket://`). */
  readonly url: Redacted.Redacted
  /** Celery's `redis_*` settings that are not in the URL (`redis_backend_use_ssl`, timeouts, …). */
  readonly connection?: RedisUrl.UrlOptions | undefined
}

/**
 * The default of `layerConfig`: `CELERY_RESULT_BACKEND` and the `CELERY_REDIS_*` variables (see
 * `RedisClient.urlConfig`), with no backend option (Celery's defaults).
 */
export const envConfig: Config.Config<LayerConfig> = Config.map(
  RedisClient.urlConfig,
  ({ options, url }): LayerConfig => ({ url, connection: options })
)

/**
 * From `effect/Config`, in the style of `@effect/sql-pg`'s `layerConfig`: each field is a `Config`
 * (or the whole object one), so the settings come from any `ConfigProvider` under any names.
 * Without an argument it reads the environment (`envConfig`).
 *
 * ```ts
 * RedisBackend.layerConfig({
 *   url: Config.redacted("RESULT_BACKEND_URL"),
 *   expires: BackendOptions.expiresConfig("RESULT_EXPIRES").pipe(Config.withDefault(Duration.days(1))),
 *   resultExtended: Config.boolean("RESULT_EXTENDED").pipe(Config.withDefault(false))
 * })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<LayerConfig> = envConfig
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(Config.unwrap(config), ({ connection, url, ...options }) => layerUrl(url, { ...options, connection }))
  )
