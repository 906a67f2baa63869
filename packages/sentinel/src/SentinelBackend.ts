/**
 * Celery's `SentinelBackend`, wired: the `RedisClient` that Sentinel keeps on the current master,
 * and the Redis result backend and Pub/Sub consumer over it, unchanged. Across a failover the
 * failing commands are `ConnectionError`s that the backend's retry policy retries; each retry
 * re-discovers the master, and the consumer's subscriber re-subscribes on the new one.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import type { ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import type { ResultBackend } from "@effect-celery/core/ResultBackend"
import type { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import type * as RedisClient from "@effect-celery/redis/RedisClient"
import * as RedisBackend from "@effect-celery/redis/RedisBackend"
import * as Sentinel from "./Sentinel.js"

export type Services = ResultBackend | ResultConsumer | RedisClient.RedisClient | Sentinel.Sentinel

/** Celery's backend options plus the Sentinel transport options (`masterName` is required). */
export interface Options extends BackendOptions, Sentinel.SentinelOptions {}

/** The backend and consumer over a Sentinel config. */
export const layer = (
  config: Sentinel.Config,
  options: BackendOptions = {}
): Layer.Layer<Services, ImproperlyConfigured | ConnectionError> =>
  RedisBackend.layerWithClient(Sentinel.layer(config), options)

/**
 * From a Celery `result_backend` URL `sentinel://[user:pass@]host:port[/db][;sentinel://…]` and the
 * options (`result_backend_transport_options`: `masterName`, `minOtherSentinels`, `sentinelKwargs`,
 * `retryPolicy`, …; `redis_backend_use_ssl` as `useSsl`).
 */
export const layerUrl = (
  url: string,
  options: Options = {}
): Layer.Layer<Services, ImproperlyConfigured | ConnectionError> =>
  Layer.unwrapEffect(Effect.map(Sentinel.configFromUrl(url, options), (config) => layer(config, options)))

/** Everything `layerConfig` reads: the `sentinel://` URL, the transport options, the backend options. */
export interface LayerConfig extends Options {
  /** `result_backend`: `sentinel://[:password@]host:port[/db][;sentinel://…]`. */
  readonly url: Redacted.Redacted
}

/**
 * The default of `layerConfig`: `CELERY_RESULT_BACKEND` for the URL and
 * `CELERY_RESULT_BACKEND_MASTER_NAME` for `master_name`; no other option (Celery's defaults).
 */
export const envConfig: Config.Config<LayerConfig> = Config.all({
  url: Config.redacted("CELERY_RESULT_BACKEND").pipe(
    Config.withDescription("Celery result_backend URL (sentinel://…)")
  ),
  masterName: Config.string("CELERY_RESULT_BACKEND_MASTER_NAME").pipe(
    Config.withDescription("result_backend_transport_options.master_name")
  )
})

/**
 * From `effect/Config` (`@effect/sql-pg` style): each field is a `Config`, so the URL, the
 * transport options and the backend options come from any `ConfigProvider` under any names.
 * Without an argument it reads the environment (`envConfig`).
 */
export const layerConfig = (
  config: Config.Config.Wrap<LayerConfig> = envConfig
): Layer.Layer<Services, ImproperlyConfigured | ConnectionError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), ({ url, ...options }) => layerUrl(Redacted.value(url), options)))
