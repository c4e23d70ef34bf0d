/*
 * libproto: the mini-p2p protocol library. This is the one header tools and
 * other programs include; each module's header states its own contracts.
 * It includes the public API only: check.h, frame.h and picker.h (the
 * bounds checker, frames, the chunk picker) are libproto's own and not
 * installed; its tests include them by name.
 *
 *   error.h     PROTO_ERR_* codes and proto_strerror()
 *   hash.h      SHA-256, the Merkle content id, chunk arithmetic
 *   check.h     the bounds checker for untrusted msgpack
 *   frame.h     length-prefixed frames
 *   msg.h       protocol messages
 *   manifest.h  manifests: build, pack, unpack, verify chunks
 *   conn.h      peer connections on libevent
 *   store.h     the files a node shares, by content id
 *   disco.h     LAN discovery datagrams and their sockets
 *   beacon.h    answering and announcing on the discovery port
 *   peers.h     a bounded table of known peers
 *   have.h      which chunks of a file a node holds
 *   picker.h    which chunk to ask a peer for next (rarest first)
 *   server.h    a node's serving side: listener, answers, HAVE pushes
 *   node.h      a node: its store, server, known peers, discovery sources
 *   nodequery.h sources that ask once: the LAN query, the peer exchange
 *   dht.h       the DHT as a source: keys, values, the engine module
 *   ifaddr.h    the addresses of this host's interfaces
 *   addr.h      a peer address: parsed once, compared and formatted here
 *   link.h      share links: p2p://ID@ADDR,...#IDENTITY
 *   fetch.h     fetching a file by id from many peers at once
 *   output.h    where a fetched file's chunks go: a stream, or FILE.part
 *   identity.h  a node's key pair and identity, TLS 1.3 contexts
 *   record.h    peer records: what a node says of itself, signed
 *   log.h       a hook for the library's debug and trace events
 */
#ifndef PROTO_H
#define PROTO_H

#include "error.h"
#include "hash.h"
#include "msg.h"
#include "manifest.h"
#include "merkle.h"
#include "conn.h"
#include "store.h"
#include "disco.h"
#include "beacon.h"
#include "peers.h"
#include "record.h"
#include "have.h"
#include "server.h"
#include "ifaddr.h"
#include "node.h"
#include "nodequery.h"
#include "dht.h"
#include "nat.h"
#include "relay.h"
#include "addr.h"
#include "link.h"
#include "fetch.h"
#include "output.h"
#include "tree.h"
#include "identity.h"
#include "log.h"

#define PROTO_LIB_VERSION "0.1.0"

#endif
