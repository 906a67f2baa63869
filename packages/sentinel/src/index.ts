export * as Sentinel from "./Sentinel.js"
export * as SentinelUrl from "./SentinelUrl.js"
