"""Browser media legs: ICE-lite (RFC 8445 §2.5), DTLS-SRTP (RFC 5763/5764), rtcp-mux
(RFC 5761) and BUNDLE (RFC 8843) on a media engine leg, so that a browser's WebRTC
stream is a leg like any SIP phone's (bridged, held, monitored and recorded the same way).

``ice`` and ``dtls`` are sans-I/O cores, ``sdp`` builds and reads the WebRTC offer/answer,
``transport`` is the asyncio side attached to a :class:`cloudcc.media.engine.Leg`.
"""
