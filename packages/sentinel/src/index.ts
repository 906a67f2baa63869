export * as Sentinel from "./Sentinel.js"
export * as SentinelBackend from "./SentinelBackend.js"
export * as SentinelUrl from "./SentinelUrl.js"
