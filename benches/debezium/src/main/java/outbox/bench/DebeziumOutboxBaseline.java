package outbox.bench;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.Header;
import io.debezium.engine.format.Json;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pulsar.client.api.MessageId;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.PulsarClientException;
import org.apache.pulsar.client.api.Schema;
import org.apache.pulsar.client.api.TypedMessageBuilder;

/**
 * Debezium's log-based outbox relay, shaped like Debezium Server with its Pulsar sink:
 * the PostgreSQL connector (pgoutput) reads {@code outbox_event} from the WAL, the outbox
 * event router turns each insert into a message routed by its {@code topic} column and
 * keyed by its {@code key}, and each batch the engine hands over is sent asynchronously
 * and awaited before its offsets are committed (the sink's behaviour).
 *
 * <p>Every second it writes the number of events published to {@code $DBZ_COUNT_FILE},
 * which scripts/bench/debezium.sh reads to know when a load has been relayed.
 *
 * <p>Configuration by environment: DBZ_PG_HOST, DBZ_PG_PORT, DBZ_PG_USER, DBZ_PG_PASSWORD,
 * DBZ_PG_DB, DBZ_SLOT, DBZ_PUBLICATION, DBZ_OFFSETS, DBZ_COUNT_FILE, DBZ_PULSAR_URL.
 */
public final class DebeziumOutboxBaseline {
  private DebeziumOutboxBaseline() {}

  static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalArgumentException("environment variable " + name + " is not set");
    }
    return value;
  }

  static Properties connectorProperties() {
    Properties p = new Properties();
    p.setProperty("name", "outbox-baseline");
    p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
    p.setProperty("offset.storage", "org.apache.kafka.connect.storage.FileOffsetBackingStore");
    p.setProperty("offset.storage.file.filename", env("DBZ_OFFSETS"));
    p.setProperty("offset.flush.interval.ms", "1000");
    p.setProperty("database.hostname", env("DBZ_PG_HOST"));
    p.setProperty("database.port", env("DBZ_PG_PORT"));
    p.setProperty("database.user", env("DBZ_PG_USER"));
    p.setProperty("database.password", env("DBZ_PG_PASSWORD"));
    p.setProperty("database.dbname", env("DBZ_PG_DB"));
    p.setProperty("topic.prefix", "outbox");
    p.setProperty("plugin.name", "pgoutput");
    p.setProperty("slot.name", env("DBZ_SLOT"));
    p.setProperty("publication.name", env("DBZ_PUBLICATION"));
    p.setProperty("publication.autocreate.mode", "disabled");
    p.setProperty("table.include.list", "public.outbox_event");
    p.setProperty("snapshot.mode", "no_data");
    p.setProperty("key.converter.schemas.enable", "false");
    p.setProperty("value.converter.schemas.enable", "false");
    p.setProperty("transforms", "outbox");
    p.setProperty("transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter");
    p.setProperty("transforms.outbox.table.field.event.id", "event_id");
    p.setProperty("transforms.outbox.table.field.event.key", "key");
    p.setProperty("transforms.outbox.table.field.event.payload", "payload");
    p.setProperty("transforms.outbox.route.by.field", "topic");
    p.setProperty("transforms.outbox.route.topic.replacement", "${routedByValue}");
    p.setProperty("transforms.outbox.table.fields.additional.placement", "event_type:header,seq:header");
    return p;
  }

  public static void main(String[] args) throws Exception {
    PulsarClient client = PulsarClient.builder().serviceUrl(env("DBZ_PULSAR_URL")).build();
    Map<String, Producer<byte[]>> producers = new HashMap<>();
    AtomicLong published = new AtomicLong();
    Path countFile = Path.of(env("DBZ_COUNT_FILE"));

    DebeziumEngine<ChangeEvent<String, String>> engine =
        DebeziumEngine.create(Json.class)
            .using(connectorProperties())
            .notifying(
                (records, committer) -> {
                  List<CompletableFuture<MessageId>> receipts = new ArrayList<>(records.size());
                  for (ChangeEvent<String, String> record : records) {
                    Producer<byte[]> producer = producers.computeIfAbsent(
                        record.destination(), topic -> createProducer(client, topic));
                    TypedMessageBuilder<byte[]> message = producer.newMessage();
                    String value = record.value();
                    message.value(value == null ? new byte[0] : value.getBytes(StandardCharsets.UTF_8));
                    if (record.key() != null) {
                      message.key(record.key());
                    }
                    for (Header<?> header : record.headers()) {
                      Object headerValue = header.getValue();
                      if (headerValue instanceof byte[] bytes) {
                        message.property(header.getKey(), new String(bytes, StandardCharsets.UTF_8));
                      } else if (headerValue != null) {
                        message.property(header.getKey(), headerValue.toString());
                      }
                    }
                    receipts.add(message.sendAsync());
                  }
                  CompletableFuture.allOf(receipts.toArray(new CompletableFuture[0])).join();
                  for (ChangeEvent<String, String> record : records) {
                    committer.markProcessed(record);
                  }
                  committer.markBatchFinished();
                  published.addAndGet(records.size());
                })
            .using((success, message, error) -> {
              if (!success) {
                System.err.println("debezium engine stopped: " + message);
                if (error != null) {
                  error.printStackTrace();
                }
                System.exit(2);
              }
            })
            .build();

    ExecutorService executor = Executors.newSingleThreadExecutor();
    executor.execute(engine);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        engine.close();
        client.close();
      } catch (Exception e) {
        // exiting anyway
      }
    }));
    while (!executor.awaitTermination(1, TimeUnit.SECONDS)) {
      Path tmp = Path.of(countFile + ".tmp");
      Files.writeString(tmp, Long.toString(published.get()));
      Files.move(tmp, countFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
  }

  static Producer<byte[]> createProducer(PulsarClient client, String topic) {
    try {
      return client.newProducer(Schema.BYTES).topic(topic).create();
    } catch (PulsarClientException e) {
      throw new IllegalStateException("cannot create a producer for " + topic + ": " + e, e);
    }
  }
}
