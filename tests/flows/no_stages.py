import time

time.sleep(0.1)
print("did some work without any stage")
