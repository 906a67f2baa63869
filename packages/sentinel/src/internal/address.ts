/** A sentinel's or a data node's address, as the sentinels report it. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** `host:port`, an IPv6 host bracketed. */
export const formatAddress = (a: Address): string =>
  a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`

export const sameAddress = (a: Address, b: Address): boolean => a.host === b.host && a.port === b.port
